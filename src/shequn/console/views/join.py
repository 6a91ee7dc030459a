"""The public page behind every invitation QR code: a customer proves their phone and joins."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from shequn.core.errors import DomainError
from shequn.groups import actions as group_actions
from shequn.members.actions import prove_phone, ticked_consents
from shequn.shop import session as shop_session


def join(request: HttpRequest, code: str) -> HttpResponse:
    """The page behind every invitation QR code: a customer proves their phone with the code
    texted to it, then joins (and is logged in on the member pages)."""
    context: dict[str, Any] = {"code": code}
    try:
        invitation = group_actions.resolve_invitation(code)
    except DomainError as exc:
        return render(request, "console/join.html", {"error": exc.message}, status=exc.status)
    context["invitation"] = invitation
    if request.method != "POST":
        return render(request, "console/join.html", context)
    phone = request.POST.get("phone", "").strip()
    context.update(
        phone=phone,
        name=request.POST.get("name", ""),
        consent_marketing=bool(request.POST.get("consent_marketing")),
        consent_chat_analysis=bool(request.POST.get("consent_chat_analysis")),
    )
    try:
        if request.POST.get("action") == "send":
            context["demo_sms"] = shop_session.text_login_code(request, invitation.store, phone)
            context["sent"] = True
            return render(request, "console/join.html", context)
        proof = prove_phone(
            store=invitation.store, phone=phone, code=request.POST.get("sms_code", "")
        )
        result = group_actions.join_by_invitation(
            code=code,
            proof=proof,
            name=context["name"],
            consents=ticked_consents(
                marketing=context["consent_marketing"],
                chat_analysis=context["consent_chat_analysis"],
            ),
        )
    except DomainError as exc:
        context["error"] = exc.message
        context["sent"] = request.POST.get("action") != "send"
        return render(request, "console/join.html", context, status=exc.status)
    shop_session.log_in(request, result.member)
    shop_session.enter_store(request, result.membership.group.store)
    context["joined"] = result
    return render(request, "console/join.html", context)
