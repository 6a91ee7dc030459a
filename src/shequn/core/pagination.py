"""One bounded page for every list in the API.

Ninja's own ``LimitOffsetPagination`` accepts any ``limit`` (``limit=1000000`` returned a whole
chain's members) and any ``offset`` (2^63 overflows the database's integer and answered 500).
Every paginated endpoint uses ``Page`` instead; a value out of range is a 422 like any other
bad parameter.
"""

from __future__ import annotations

from typing import Any

from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 100
MAX_OFFSET = 1_000_000_000  # far past any real list; well inside a 64-bit integer


class Page(LimitOffsetPagination):
    class Input(Schema):
        limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="每页条数(1-200)")
        offset: int = Field(0, ge=0, le=MAX_OFFSET, description="跳过的条数")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_limit=MAX_PAGE_SIZE, **kwargs)
