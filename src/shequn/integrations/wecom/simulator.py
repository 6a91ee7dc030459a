"""A local simulated WeCom (企业微信) for the demo and the tests: the server API Shequn calls, and
the customer-group change callbacks it receives, in WeCom's published formats.

- ``GET /cgi-bin/gettoken?corpid=&corpsecret=`` hands out tokens (a wrong secret is 40001);
  ``expire_tokens()`` makes every token issued so far answer 42001, as an expired one does;
- ``POST /cgi-bin/externalcontact/groupchat/get?access_token=`` answers ``group_chat`` with its
  ``member_list`` and ``member_version`` (an unknown chat is 40050);
- ``add_members`` / ``remove_members`` change a chat as people join and leave, give it a new
  ``member_version``, and return the plaintext ``change_external_chat`` event WeCom would send
  (``LastMemVer`` → ``CurMemVer``): a test seals and delivers it, late, twice or never;
- ``fail_next(errcode)`` makes the next API call fail with that code (``-1``: HTTP 500).

It is a stand-in for the network, never part of a production deployment.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIServer

from shequn.integrations.loopback import serve_wsgi

StartResponse = Callable[[str, list[tuple[str, str]]], object]
STAFF, CUSTOMER = 1, 2


@dataclass
class _Chat:
    name: str
    owner: str
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # userid → member_list item
    version: str = ""
    changes: int = 0


@dataclass
class SimulatedWeCom:
    corp_id: str
    secret: str
    chats: dict[str, _Chat] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)  # API path → times called
    _tokens: dict[str, bool] = field(default_factory=dict)  # token → still valid
    _failures: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- the world ------------------------------------------------------------------------------
    def create_chat(self, chat_id: str, *, name: str = "", owner: str = "ZhangSan") -> None:
        with self._lock:
            chat = self.chats[chat_id] = _Chat(name=name or chat_id, owner=owner)
            self._join(chat, [owner], STAFF, scene=1)

    def add_members(
        self, chat_id: str, userids: Iterable[str], *, join_scene: int = 3, kind: int = CUSTOMER
    ) -> str:
        """People join (3: scanned the group QR code); the event WeCom sends about it."""
        with self._lock:
            chat = self.chats[chat_id]
            before = chat.version
            joined = self._join(chat, list(userids), kind, scene=join_scene)
            return self._event(chat_id, "add_member", joined, before, JoinScene=str(join_scene))

    def remove_members(self, chat_id: str, userids: Iterable[str], *, quit_scene: int = 0) -> str:
        """People leave (0: by themselves, 1: removed); the event WeCom sends about it."""
        with self._lock:
            chat = self.chats[chat_id]
            before = chat.version
            gone = [u for u in userids if chat.members.pop(u, None) is not None]
            self._new_version(chat)
            return self._event(chat_id, "del_member", gone, before, QuitScene=str(quit_scene))

    def customers(self, chat_id: str) -> set[str]:
        with self._lock:
            members = self.chats[chat_id].members.values()
            return {m["userid"] for m in members if m["type"] == CUSTOMER}

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, False)

    def fail_next(self, errcode: int) -> None:
        with self._lock:
            self._failures.append(errcode)

    def _join(self, chat: _Chat, userids: list[str], kind: int, scene: int) -> list[str]:
        joined = [u for u in userids if u not in chat.members]
        now = int(time.time())
        for userid in joined:
            chat.members[userid] = {
                "userid": userid,
                "type": kind,
                "join_time": now,
                "join_scene": scene,
                "invitor": {"userid": chat.owner},
                "group_nickname": "",
                "name": userid,
            }
        self._new_version(chat)
        return joined

    def _new_version(self, chat: _Chat) -> None:
        chat.changes += 1
        seed = f"{chat.changes}:{','.join(sorted(chat.members))}".encode()
        chat.version = hashlib.md5(seed, usedforsecurity=False).hexdigest()  # WeCom's look

    def _event(self, chat_id: str, detail: str, who: list[str], before: str, **extra: str) -> str:
        items = "".join(f"<Item><![CDATA[{userid}]]></Item>" for userid in who)
        more = "".join(f"<{tag}>{value}</{tag}>" for tag, value in extra.items())
        return (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            "<FromUserName><![CDATA[sys]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            "<Event><![CDATA[change_external_chat]]></Event>"
            f"<ChatId><![CDATA[{chat_id}]]></ChatId><ChangeType><![CDATA[update]]></ChangeType>"
            f"<UpdateDetail><![CDATA[{detail}]]></UpdateDetail>{more}"
            f"<MemChangeCnt>{len(who)}</MemChangeCnt><MemChangeList>{items}</MemChangeList>"
            f"<LastMemVer><![CDATA[{before}]]></LastMemVer>"
            f"<CurMemVer><![CDATA[{self.chats[chat_id].version}]]></CurMemVer></xml>"
        )

    # --- the API --------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        query = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
        with self._lock:
            self.calls[path] += 1
            failure = self._failures.pop(0) if self._failures else None
        if failure == -1:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"simulated outage"]
        if failure is not None:
            return _json(start_response, {"errcode": failure, "errmsg": "simulated failure"})
        if path == "/cgi-bin/gettoken":
            return _json(start_response, self._gettoken(query))
        if path == "/cgi-bin/externalcontact/groupchat/get":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            except ValueError:
                return _json(start_response, {"errcode": 47001, "errmsg": "data format error"})
            return _json(start_response, self._groupchat_get(query, body))
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    def _gettoken(self, query: dict[str, str]) -> dict[str, Any]:
        if query.get("corpid") != self.corp_id or query.get("corpsecret") != self.secret:
            return {"errcode": 40001, "errmsg": "invalid credential"}
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = True
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}

    def _groupchat_get(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            valid = self._tokens.get(query.get("access_token", ""))
            if valid is None:
                return {"errcode": 40014, "errmsg": "invalid access_token"}
            if not valid:
                return {"errcode": 42001, "errmsg": "access_token expired"}
            chat = self.chats.get(str(body.get("chat_id", "")))
            if chat is None:
                return {"errcode": 40050, "errmsg": "chatid not found"}
            return {
                "errcode": 0,
                "errmsg": "ok",
                "group_chat": {
                    "chat_id": body["chat_id"],
                    "name": chat.name,
                    "owner": chat.owner,
                    "create_time": 1764000000,
                    "notice": "",
                    "member_list": [dict(m) for m in chat.members.values()],
                    "admin_list": [],
                    "member_version": chat.version,
                },
            }


def _json(start_response: StartResponse, answer: dict[str, Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/json; charset=utf-8")])
    return [json.dumps(answer, ensure_ascii=False).encode()]


def serve_in_thread(wecom: SimulatedWeCom, host: str = "127.0.0.1", port: int = 0) -> WSGIServer:
    """Start the simulated API on loopback; ``server.server_port`` tells the port."""
    return serve_wsgi(wecom, "wecom-simulator", host, port)
