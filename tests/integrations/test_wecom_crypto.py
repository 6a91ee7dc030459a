"""WeCom callback crypto against the published sample (WXBizMsgCrypt's Sample: token QDG6eK, the
sample corp id and EncodingAESKey, a signed encrypted event), and the refusals: a bad signature,
a stale timestamp, another corp's message, tampered ciphertext."""

from __future__ import annotations

import base64

import pytest

from shequn.integrations.wecom.crypto import (
    CallbackKeys,
    CallbackRejected,
    open_message,
    seal_message,
    signature,
)

SAMPLE = CallbackKeys(
    token="QDG6eK",
    encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    receive_id="wx5823bf96d3bd56c7",
)
SAMPLE_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj9"
    "11L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DO"
    "dnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03"
    "v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNe"
    "lZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
SAMPLE_CALL = {
    "msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
    "timestamp": "1409659813",
    "nonce": "1372623149",
    "encrypted": SAMPLE_ENCRYPT,
}


def test_the_published_sample_opens() -> None:
    message = open_message(SAMPLE, **SAMPLE_CALL, now=1409659813 + 5)
    assert message.startswith("<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>")
    assert "<MsgType><![CDATA[text]]></MsgType>" in message


def test_seal_then_open_round_trips_chinese_text() -> None:
    keys = CallbackKeys("tok", base64.b64encode(bytes(range(32))).decode().rstrip("="), "ww1436e0")
    sealed = seal_message(keys, "<xml><ChatId>wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA</ChatId>客户群</xml>")
    call = {
        "msg_signature": signature("tok", "1700000000", "n1", sealed),
        "timestamp": "1700000000",
        "nonce": "n1",
        "encrypted": sealed,
    }
    assert open_message(keys, **call, now=1700000000).endswith("客户群</xml>")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"msg_signature": "0" * 40}, "signature"),
        ({"nonce": "1372623150"}, "signature"),  # the signature covers the nonce
        ({}, "window"),  # replayed an hour later
    ],
)
def test_bad_or_replayed_callbacks_are_refused(change: dict[str, str], reason: str) -> None:
    now = 1409659813 + (3600 if not change else 0)
    with pytest.raises(CallbackRejected, match=reason):
        open_message(SAMPLE, **{**SAMPLE_CALL, **change}, now=now)


def test_another_corps_message_and_tampered_ciphertext_are_refused() -> None:
    other = CallbackKeys(SAMPLE.token, SAMPLE.encoding_aes_key, "ww-someone-else")
    with pytest.raises(CallbackRejected, match="corp"):
        open_message(other, **SAMPLE_CALL, now=1409659813)
    raw = bytearray(base64.b64decode(SAMPLE_ENCRYPT))
    raw[-1] ^= 0x01  # the padding block
    tampered = base64.b64encode(bytes(raw)).decode()
    call = {**SAMPLE_CALL, "encrypted": tampered}
    call["msg_signature"] = signature(SAMPLE.token, call["timestamp"], call["nonce"], tampered)
    with pytest.raises(CallbackRejected):
        open_message(SAMPLE, **call, now=1409659813)
