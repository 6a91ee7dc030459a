"""Who the member is on the H5 pages, which store they are shopping at, and where they came
from. Kept in the Django session under keys of their own, apart from staff logins."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from shequn.core import timeutil
from shequn.core.middleware import client_ip
from shequn.core.phones import normalize_phone
from shequn.integrations import sms
from shequn.members.actions import send_login_code
from shequn.members.models import Member
from shequn.org.models import NodeKind, OrgNode
from shequn.referrals.policy import attribution_window

from .links import Source

MEMBER_KEY = "shop_member"
STORE_KEY = "shop_store"
SOURCE_KEY = "shop_source"

View = Callable[..., HttpResponse]


def current_member(request: HttpRequest) -> Member | None:
    member_id = request.session.get(MEMBER_KEY)
    if not member_id:
        return None
    return Member.objects.filter(pk=member_id).select_related("home_store").first()


def log_in(request: HttpRequest, member: Member) -> None:
    request.session.cycle_key()  # no session fixation
    request.session[MEMBER_KEY] = member.pk


def log_out(request: HttpRequest) -> None:
    """Forget the member and what they were doing (cart, where they came from)."""
    request.session.flush()


def logged_in_member(request: HttpRequest) -> Member:
    """The member a ``member_view`` let in."""
    return request.member  # type: ignore[attr-defined,no-any-return]


def member_view(view: View) -> View:
    """The member must be logged in; ``request.member`` is them."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        member = current_member(request)
        if member is None:
            # After login, come back here; a form post goes back to the page that sent it.
            back = request.get_full_path()
            if request.method != "GET":
                referer = request.META.get("HTTP_REFERER", "")
                ok = url_has_allowed_host_and_scheme(referer, {request.get_host()})
                back = urlsplit(referer).path if ok and referer else reverse("shop:orders")
            return redirect(reverse("shop:login") + "?" + urlencode({"next": back}))
        request.member = member  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper


def text_login_code(request: HttpRequest, store: OrgNode, phone: str) -> str | None:
    """Text a login code to ``phone`` (limited per phone, per this client's address and in all),
    and return the text when the page may show it (the demo sends no SMS), else None."""
    send_login_code(store=store, phone=phone, ip=client_ip(request))
    return sms.last_text_to(normalize_phone(phone)) if sms.shows_codes_on_page() else None


def shopping_store(request: HttpRequest, member: Member | None = None) -> OrgNode | None:
    """The store the member is buying from: the one of the group or card they came through,
    else their home store."""
    store_id = request.session.get(STORE_KEY)
    if store_id:
        store = OrgNode.objects.filter(pk=store_id, kind=NodeKind.STORE).first()
        if store is not None and (member is None or store.chain_id == member.chain_id):
            return store
    return member.home_store if member is not None else None


def enter_store(request: HttpRequest, store: OrgNode) -> None:
    request.session[STORE_KEY] = store.pk


def remember_source(request: HttpRequest, source: Source) -> None:
    """Last touch wins: a newer card or share link replaces the older source."""
    request.session[SOURCE_KEY] = {**source.as_session(), "at": timeutil.now().isoformat()}


def current_source(request: HttpRequest, chain_id: int) -> Source | None:
    """The last touch, if it is within the chain's attribution window (HQ sets it; 7 days
    unless changed)."""
    raw = request.session.get(SOURCE_KEY)
    if not isinstance(raw, dict):
        return None
    try:
        at = datetime.fromisoformat(str(raw["at"]))
        if timeutil.now() - at > attribution_window(chain_id):
            return None
        return Source(
            group_id=raw.get("group"),
            sharer_id=raw.get("sharer"),
            content_ref=str(raw.get("content") or ""),
            channel=str(raw["channel"]),
        )
    except (KeyError, ValueError, TypeError):
        return None
