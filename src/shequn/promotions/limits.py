"""The per-member limit every promotion keeps (flash sales, group-buys, coupons): one counter
row per (promotion, member), moved only by this guarded upsert, so two taps at once can never
take the member past the limit — no check in Python before the write."""

from __future__ import annotations

from functools import cache

from django.db import connection, models


@cache
def _sql(model: type[models.Model], owner: str, counter: str) -> str:
    table = model._meta.db_table
    return (
        f"INSERT INTO {table} ({owner}, member_id, {counter}) VALUES (%s, %s, %s)"  # noqa: S608
        f" ON CONFLICT ({owner}, member_id) DO UPDATE SET {counter} = {table}.{counter}"
        f" + excluded.{counter} WHERE {table}.{counter} + excluded.{counter} <= %s"
    )


def claim_within_limit(
    model: type[models.Model],
    *,
    owner: str,
    counter: str,
    owner_id: int,
    member_id: int,
    quantity: int,
    limit: int,
) -> bool:
    """Add ``quantity`` to the member's counter for ``owner_id`` if it stays within ``limit``;
    False (nothing written) when it would not. Call inside the caller's transaction."""
    with connection.cursor() as cursor:
        cursor.execute(_sql(model, owner, counter), [owner_id, member_id, quantity, limit])
        return bool(cursor.rowcount == 1)
