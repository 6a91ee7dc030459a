"""Share posters (分享海报): a 750 × 1200 PNG a sharer saves and posts — the store, the product
(image or a lettered tile), its title, price and one line of terms, and the QR of their link.

Drawn with Pillow; the QR comes from segno, placed module by module at ``QR_ORIGIN`` in
``QR_SCALE``-pixel modules (the tests read it back from those numbers). Chinese text needs a
CJK font: the first of ``FONT_CANDIDATES`` found (``make browser`` installs Noto Sans CJK with
chromium) or ``SHEQUN_POSTER_FONT``; without one the text falls back to Pillow's font.

Product images are drawn only from the project's own static files: a poster never fetches a
URL from the server (that would let any product URL make the server call out).
"""

from __future__ import annotations

import io
import logging
import os
import threading
from functools import cache

import segno
from django.contrib.staticfiles import finders
from PIL import Image, ImageDraw, ImageFont

from .sharing import ShareTarget

logger = logging.getLogger(__name__)

SIZE = (750, 1200)
BRAND = (228, 57, 60)  # the shop's red
INK = (34, 34, 34)
MUTED = (128, 128, 128)
TILE_BOX = (50, 150, 700, 800)  # left, top, right, bottom of the product picture
QR_ORIGIN = (470, 900)  # top-left pixel of the QR's first module (quiet zone excluded)
QR_SCALE = 6  # pixels per module: a version ≤ 4 code fits the 230-pixel box
FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)
KIND_LABEL = {"product": "好物推荐", "coupon": "领券立减", "group_buy": "拼团特惠"}


@cache
def _font_path() -> str | None:
    configured = os.environ.get("SHEQUN_POSTER_FONT", "")
    for path in (configured, *FONT_CANDIDATES):
        if path and os.path.exists(path):
            return path
    logger.warning("no CJK font found for posters: Chinese text will not render")
    return None


_fonts = threading.local()  # FreeType faces are not shared between threads


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The poster font at ``size``, opened once per thread and size (the CJK file is ~20 MB)."""
    loaded: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = getattr(_fonts, "by_size", {})
    _fonts.by_size = loaded
    if size not in loaded:
        path = _font_path()
        loaded[size] = ImageFont.truetype(path, size) if path else ImageFont.load_default(size)
    return loaded[size]


def qr_matrix(url: str) -> list[list[bool]]:
    """The QR modules of ``url`` (dark = True), as drawn on the poster."""
    return [[bool(cell) for cell in row] for row in segno.make(url, error="m").matrix]


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: object, width: int, lines: int) -> list[str]:
    out: list[str] = []
    current = ""
    for char in text:
        if draw.textlength(current + char, font=font) > width:  # type: ignore[arg-type]
            out.append(current)
            current = char
            if len(out) == lines:
                out[-1] = out[-1][:-1] + "…"
                return out
        else:
            current += char
    return [*out, current] if current else out


def _product_picture(image_path: str) -> Image.Image | None:
    """A static file of the project (``/static/...``), else None: never a fetch."""
    if not image_path.startswith("/static/"):
        return None
    found = finders.find(image_path.removeprefix("/static/"))
    if not found or isinstance(found, list):
        return None
    try:
        return Image.open(found).convert("RGB")
    except OSError:
        return None


def render_poster(*, target: ShareTarget, store_name: str, url: str, image_path: str = "") -> bytes:
    """The PNG bytes of the poster for ``target`` at ``store_name``, its QR opening ``url``."""
    poster = Image.new("RGB", SIZE, "white")
    draw = ImageDraw.Draw(poster)
    draw.rectangle((0, 0, SIZE[0], 110), fill=BRAND)
    draw.text((50, 28), store_name[:16], font=_font(40), fill="white")
    label = KIND_LABEL.get(target.kind, "")
    draw.text((SIZE[0] - 50, 38), label, font=_font(30), fill="white", anchor="ra")

    left, top, right, bottom = TILE_BOX
    picture = _product_picture(image_path)
    if picture is not None:
        picture.thumbnail((right - left, bottom - top))
        poster.paste(picture, (left + (right - left - picture.width) // 2, top))
    else:  # a lettered tile: the title's first character on the brand's pale red
        draw.rounded_rectangle(TILE_BOX, radius=24, fill=(253, 236, 236))
        centre = ((left + right) // 2, (top + bottom) // 2)
        draw.text(centre, target.title[:1] or "?", font=_font(300), fill=BRAND, anchor="mm")

    y = bottom + 20
    for line in _wrap(draw, target.title, _font(40), 400, 2):
        draw.text((50, y), line, font=_font(40), fill=INK)
        y += 52
    price = f"¥{target.price_fen / 100:.2f}"
    if target.kind == "coupon":
        price = f"立减 {price}"
    draw.text((50, y + 10), price, font=_font(56), fill=BRAND)
    draw.text((50, y + 90), target.note[:20], font=_font(28), fill=MUTED)

    x0, y0 = QR_ORIGIN
    matrix = qr_matrix(url)
    quiet = 2 * QR_SCALE
    size = len(matrix) * QR_SCALE
    draw.rectangle((x0 - quiet, y0 - quiet, x0 + size + quiet, y0 + size + quiet), fill="white")
    for row_index, row in enumerate(matrix):
        for col_index, dark in enumerate(row):
            if dark:
                x = x0 + col_index * QR_SCALE
                yy = y0 + row_index * QR_SCALE
                draw.rectangle((x, yy, x + QR_SCALE - 1, yy + QR_SCALE - 1), fill="black")
    draw.text(
        (x0 + size // 2, y0 + size + 24),
        "长按识别 · 立即购买",
        font=_font(24),
        fill=MUTED,
        anchor="ma",
    )
    buffer = io.BytesIO()
    poster.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
