"""The WeCom callback URL (here in groups, whose state it changes; the crypto is the
integration's): ``GET`` verifies it (decrypt ``echostr``, answer the plaintext),
``POST`` delivers an encrypted event. The signature and the 5-minute window are the
authentication: no session, no CSRF token. A callback whose signature, window or corp is wrong
is a 403, an unreadable one a 400, a body over 1 MiB a 413 (plain text, like the others, refused
before it is read), and none of them changes anything; an accepted one (also a repeat)
is an empty 200, which tells WeCom not to retry.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET  # noqa: S405 - the outer envelope; DOCTYPE refused first

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from shequn.core.bodies import MAX_CALLBACK_BODY, read_body
from shequn.integrations.wecom.crypto import CallbackKeys, CallbackRejected, open_message
from shequn.org.models import NodeKind, OrgNode

from .wecom_sync import BadEvent, apply_group_change, parse_change

logger = logging.getLogger("shequn.wecom")


def _keys() -> CallbackKeys | None:
    config = settings.WECOM
    if not (config["CORP_ID"] and config["CALLBACK_TOKEN"] and config["CALLBACK_AES_KEY"]):
        return None
    return CallbackKeys(config["CALLBACK_TOKEN"], config["CALLBACK_AES_KEY"], config["CORP_ID"])


@csrf_exempt
@require_http_methods(["GET", "POST"])
def wecom_callback(request: HttpRequest) -> HttpResponse:
    raw = read_body(request)
    if raw is None:
        logger.warning("wecom callback refused: body over %d bytes", MAX_CALLBACK_BODY)
        return HttpResponse("请求体过大", status=413, content_type="text/plain; charset=utf-8")
    keys = _keys()
    chain = OrgNode.objects.filter(code=settings.WECOM["CHAIN_CODE"], kind=NodeKind.HQ).first()
    if keys is None or chain is None:
        return HttpResponse("企业微信回调未配置", status=503)
    params = request.GET
    try:
        if request.method == "GET":
            plain = open_message(
                keys,
                msg_signature=params.get("msg_signature", ""),
                timestamp=params.get("timestamp", ""),
                nonce=params.get("nonce", ""),
                encrypted=params.get("echostr", ""),
            )
            return HttpResponse(plain, content_type="text/plain")
        body = raw.decode("utf-8", errors="replace")
        if "<!DOCTYPE" in body or "<!ENTITY" in body:
            raise BadEvent("DOCTYPE is not allowed")
        try:
            encrypted = (ET.fromstring(body).findtext("Encrypt") or "").strip()  # noqa: S314
        except ET.ParseError:
            raise BadEvent("not XML") from None
        plain = open_message(
            keys,
            msg_signature=params.get("msg_signature", ""),
            timestamp=params.get("timestamp", ""),
            nonce=params.get("nonce", ""),
            encrypted=encrypted,
        )
        change = parse_change(plain)
    except CallbackRejected as refused:
        logger.warning("wecom callback refused: %s", refused)
        return HttpResponse(f"refused: {refused}", status=403)
    except BadEvent as bad:
        logger.warning("wecom callback unreadable: %s", bad)
        return HttpResponse(f"bad event: {bad}", status=400)
    if change is not None:
        apply_group_change(chain, change, plain)
    return HttpResponse("")
