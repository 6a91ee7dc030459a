"""QR codes for invitations (segno): PNG for printing at the till, SVG for the console."""

from __future__ import annotations

import io

import segno


def qr_png(data: str, *, scale: int = 8) -> bytes:
    buffer = io.BytesIO()
    segno.make(data, error="m").save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()
