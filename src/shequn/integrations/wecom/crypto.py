"""WeCom callback transport crypto, as published (document path/91144, "加解密方案"):

- ``msg_signature = sha1("".join(sorted([token, timestamp, nonce, encrypt])))``;
- the AES key is ``b64decode(EncodingAESKey + "=")`` (43 characters → 32 bytes), AES-256-CBC
  with IV = key[:16] and PKCS#7 padding to 32-byte blocks;
- the plaintext is ``random(16) ‖ len(msg) as 4 bytes big-endian ‖ msg ‖ receiveid`` (the corp
  id, or a third-party suite id).

``open_message`` checks the signature (constant-time), the timestamp window (a replayed
callback older than 5 minutes is refused) and the receive id before anything is parsed.
``seal_message`` is the other side, for the URL check's echo, replies and the tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeCom pads to 32 bytes, not AES's 16
WINDOW_S = 300


class CallbackRejected(ValueError):
    """A callback that must not be believed: bad signature, stale, or not for us."""


@dataclass(frozen=True)
class CallbackKeys:
    token: str
    encoding_aes_key: str  # 43 characters
    receive_id: str  # the corp id

    @property
    def aes_key(self) -> bytes:
        key = base64.b64decode(self.encoding_aes_key + "=")
        if len(key) != 32:
            raise ValueError("EncodingAESKey must be 43 characters (32 bytes)")
        return key


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    joined = "".join(sorted([token, timestamp, nonce, encrypted]))
    return hashlib.sha1(joined.encode()).hexdigest()  # noqa: S324 - the published scheme


def _pad(data: bytes) -> bytes:
    size = BLOCK - len(data) % BLOCK
    return data + bytes([size]) * size


def _unpad(data: bytes) -> bytes:
    size = data[-1] if data else 0
    if not 1 <= size <= BLOCK or data[-size:] != bytes([size]) * size:
        raise CallbackRejected("bad padding")
    return data[:-size]


def seal_message(keys: CallbackKeys, message: str, *, random16: bytes | None = None) -> str:
    body = message.encode()
    plain = (random16 or os.urandom(16)) + struct.pack(">I", len(body)) + body
    plain += keys.receive_id.encode()
    key = keys.aes_key
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(_pad(plain)) + encryptor.finalize()).decode()


def open_message(
    keys: CallbackKeys,
    *,
    msg_signature: str,
    timestamp: str,
    nonce: str,
    encrypted: str,
    now: float | None = None,
) -> str:
    """The plaintext of a callback, or ``CallbackRejected`` (nothing else is done first)."""
    expected = signature(keys.token, timestamp, nonce, encrypted)
    if not hmac.compare_digest(expected, msg_signature or ""):
        raise CallbackRejected("signature mismatch")
    if not timestamp.isdigit() or abs((now or time.time()) - int(timestamp)) > WINDOW_S:
        raise CallbackRejected("timestamp outside the 5-minute window")
    try:
        raw = base64.b64decode(encrypted, validate=True)
    except ValueError:
        raise CallbackRejected("not base64") from None
    if not raw or len(raw) % BLOCK:
        raise CallbackRejected("bad ciphertext length")
    key = keys.aes_key
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = _unpad(decryptor.update(raw) + decryptor.finalize())
    if len(plain) < 20:
        raise CallbackRejected("too short")
    (length,) = struct.unpack(">I", plain[16:20])
    message, receive_id = plain[20 : 20 + length], plain[20 + length :]
    if len(message) != length or receive_id.decode(errors="replace") != keys.receive_id:
        raise CallbackRejected("not addressed to this corp")
    return message.decode()
