"""Outbound WeCom server API calls (企业微信服务端 API): an access token, then the customer-group
detail that a full membership resync reads.

- ``GET /cgi-bin/gettoken?corpid=&corpsecret=`` → ``{errcode, errmsg, access_token,
  expires_in}``. A token lives 7,200 s and WeCom limits how often one is asked for, so it is
  kept per (API, corp, secret) until a minute before it expires, shared by every client in the
  process; a call refused for its token (40001 / 40014 / 42001) asks for a new one once.
- ``POST /cgi-bin/externalcontact/groupchat/get?access_token=`` ``{chat_id, need_name}`` →
  ``group_chat{chat_id, name, owner, member_list[{userid, type (1 staff, 2 customer),
  join_time, join_scene, …}], member_version}`` (developer.work.weixin.qq.com path/96338).

Every failure — the network, an HTTP error, ``errcode`` ≠ 0, a body that is not the documented
shape — is a ``WeComError`` naming it, so a caller can retry later and change nothing now.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

TOKEN_REFUSED = {40001, 40014, 42001}  # invalid secret-derived token, invalid token, expired
TOKEN_MARGIN_S = 60
CUSTOMER = 2  # member_list[].type: 1 a staff member of the corp, 2 an external customer


class WeComError(Exception):
    """WeCom refused the call (``errcode``) or could not be reached (code -1)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"企业微信接口错误 {code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ChatMember:
    userid: str
    type: int  # 1 staff, 2 customer
    join_time: int  # epoch seconds
    join_scene: int  # 1 invited directly, 2 invitation link, 3 scanned the group QR code


@dataclass(frozen=True)
class GroupChat:
    chat_id: str
    name: str
    owner: str
    member_version: str
    members: tuple[ChatMember, ...]

    @property
    def customers(self) -> set[str]:
        """External userids of the customers in the group (staff are not members of ours)."""
        return {m.userid for m in self.members if m.type == CUSTOMER}


_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}  # (api, corp, secret) → token, until
_token_locks: dict[tuple[str, str, str], threading.Lock] = {}  # one asks, the others wait
_token_locks_lock = threading.Lock()


@dataclass(frozen=True)
class WeComClient:
    base_url: str  # https://qyapi.weixin.qq.com, or the local simulated API
    corp_id: str
    secret: str  # the 客户联系 secret (or a self-built app's with customer-contact rights)
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError("base_url must be an http(s) URL")
        if not (self.corp_id and self.secret):
            raise ValueError("corp_id and secret are required")

    # --- the calls --------------------------------------------------------------------------
    def group_chat(self, chat_id: str) -> GroupChat:
        answer = self.call("/cgi-bin/externalcontact/groupchat/get", {"chat_id": chat_id})
        chat = answer.get("group_chat")
        if not isinstance(chat, dict) or not isinstance(chat.get("member_list"), list):
            raise WeComError(-1, "groupchat/get 的回复缺少 group_chat.member_list")
        try:
            members = tuple(
                ChatMember(
                    userid=str(item["userid"]),
                    type=int(item.get("type", 0)),
                    join_time=int(item.get("join_time", 0)),
                    join_scene=int(item.get("join_scene", 0)),
                )
                for item in chat["member_list"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WeComError(-1, f"groupchat/get 的成员列表无法读取: {exc!r}") from None
        return GroupChat(
            chat_id=str(chat.get("chat_id", chat_id)),
            name=str(chat.get("name", "")),
            owner=str(chat.get("owner", "")),
            member_version=str(chat.get("member_version", "")),
            members=members,
        )

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` with a token; a refused token is renewed once."""
        for attempt in (1, 2):
            token = self.access_token(renew=attempt == 2)
            query = urllib.parse.urlencode({"access_token": token})
            answer = self._send("POST", f"{path}?{query}", body)
            code = answer.get("errcode", 0)
            if code in TOKEN_REFUSED and attempt == 1:
                continue
            if code != 0:
                raise WeComError(int(code), str(answer.get("errmsg", "")))
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def access_token(self, *, renew: bool = False) -> str:
        key = (self.base_url, self.corp_id, self.secret)
        with _token_locks_lock:
            lock = _token_locks.setdefault(key, threading.Lock())
        with lock:  # per corp and secret: another corp's slow gettoken holds up no one else
            kept = _tokens.get(key)
            if kept is not None and not renew and kept[1] > time.monotonic():
                return kept[0]
            query = urllib.parse.urlencode({"corpid": self.corp_id, "corpsecret": self.secret})
            answer = self._send("GET", f"/cgi-bin/gettoken?{query}", None)
            token, lifetime = answer.get("access_token"), answer.get("expires_in", 7200)
            if answer.get("errcode", 0) != 0 or not isinstance(token, str) or not token:
                raise WeComError(int(answer.get("errcode", -1)), str(answer.get("errmsg", "")))
            _tokens[key] = (token, time.monotonic() + max(0, int(lifetime) - TOKEN_MARGIN_S))
            return token

    # --- the wire ---------------------------------------------------------------------------
    def _send(
        self, method: str, path_and_query: str, body: dict[str, Any] | None
    ) -> dict[str, Any]:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        request = urllib.request.Request(  # noqa: S310 - base_url is checked to be http(s)
            self.base_url.rstrip("/") + path_and_query,
            data=data,
            method=method,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise WeComError(-1, f"HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise WeComError(-1, f"无法连接企业微信: {exc}") from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise WeComError(-1, "回复不是 JSON") from None
        if not isinstance(answer, dict):
            raise WeComError(-1, "回复不是 JSON 对象")
        return answer


def client_from_settings() -> WeComClient | None:
    """The configured client, or None while ``WECOM_CONTACT_SECRET`` is not set (resyncs then
    wait: a group marked for one stays marked)."""
    from django.conf import settings

    config = settings.WECOM
    if not (config.get("CORP_ID") and config.get("CONTACT_SECRET")):
        return None
    return WeComClient(
        base_url=config.get("API_BASE") or "https://qyapi.weixin.qq.com",
        corp_id=config["CORP_ID"],
        secret=config["CONTACT_SECRET"],
    )
