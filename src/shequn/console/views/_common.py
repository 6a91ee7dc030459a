"""What every console page shares: ``staff_view`` (login and staff required, a domain error
shown as a message or an error page), the acting staff member, and amounts typed in yuan."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse

from shequn.core.errors import DomainError, InvalidInput
from shequn.core.money import yuan_to_fen
from shequn.org.models import Staff
from shequn.org.scoping import acting_staff

View = Callable[..., HttpResponse]


def parse_yuan(raw: str) -> int:
    """An amount typed in yuan ("12.5") as fen, or the reason it is not one."""
    try:
        return yuan_to_fen(raw or "")
    except ValueError as exc:
        raise InvalidInput(str(exc), code="invalid_amount") from None


def staff_view(view: View) -> View:
    """Login required, and the user must be staff; ``request.staff`` is the acting staff member."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect(f"{reverse('console:login')}?next={request.path}")
        try:
            request.staff = acting_staff(request.user)  # type: ignore[attr-defined]
        except DomainError as exc:
            return render(request, "console/error.html", {"message": exc.message}, status=403)
        try:
            return view(request, *args, **kwargs)
        except DomainError as exc:
            if request.method == "POST":
                messages.error(request, exc.message)
                return HttpResponseRedirect(
                    request.META.get("HTTP_REFERER") or reverse("console:home")
                )
            return render(
                request, "console/error.html", {"message": exc.message}, status=exc.status
            )

    return wrapper


def _staff(request: HttpRequest) -> Staff:
    return request.staff  # type: ignore[attr-defined,no-any-return]
