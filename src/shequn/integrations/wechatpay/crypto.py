"""The primitives: RSA PKCS#1 v1.5 with SHA-256, and AES-256-GCM, via `cryptography`."""

from __future__ import annotations

import base64

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PrivateKey = rsa.RSAPrivateKey
PublicKey = rsa.RSAPublicKey


def generate_private_key() -> PrivateKey:
    """A fresh RSA-2048 key (tests and the local simulated gateway; never for production)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def load_private_key(pem: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def load_public_key(pem: bytes) -> PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def private_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def rsa_sign(key: PrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(key: PublicKey, message: bytes, signature_b64: str) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def aes_gcm_encrypt(key: bytes, nonce: str, plaintext: bytes, associated_data: str) -> str:
    """base64(ciphertext ‖ 16-byte tag), as WeChat Pay sends ``resource.ciphertext``."""
    return base64.b64encode(
        AESGCM(key).encrypt(nonce.encode(), plaintext, associated_data.encode())
    ).decode()


class DecryptionFailed(Exception):
    pass


def aes_gcm_decrypt(key: bytes, nonce: str, ciphertext_b64: str, associated_data: str) -> bytes:
    try:
        return AESGCM(key).decrypt(
            nonce.encode(),
            base64.b64decode(ciphertext_b64, validate=True),
            associated_data.encode(),
        )
    except (InvalidTag, ValueError) as exc:
        raise DecryptionFailed(str(exc) or type(exc).__name__) from None
