"""Read rows by primary key without building an ORM query.

The member order endpoint reads the token's member and the store on every request;
``Model.objects.filter(pk=...).first()`` compiles a query each time (ordering, joins setup,
SQL generation: ~0.3 ms of Python), which at flash-sale rates costs more than the database's
work. Here each combination of models keeps one SQL string, and instances are built the way the
ORM builds them from a row it read (the fields' converters, then ``Model.from_db``), so the
results are ordinary model instances. ``rows_by_pk`` reads several rows of different tables in
one round trip: a sold-out flash request is mostly round trips.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar, overload

from django.db import DEFAULT_DB_ALIAS, connections, models

from shequn.core.prepared import fetch_one_prepared

M = TypeVar("M", bound=models.Model)
N = TypeVar("N", bound=models.Model)

Converter = Callable[[Any, Any, Any], Any]


class _Columns:
    """One model's columns, attribute names and per-column converters (the backend's, then
    the field's: what the ORM's compiler applies to a row it read)."""

    def __init__(self, model: type[models.Model]) -> None:
        connection = connections[DEFAULT_DB_ALIAS]
        fields = model._meta.concrete_fields
        self.model = model
        self.table = model._meta.db_table
        self.columns = [str(f.column) for f in fields]
        self.pk_index = self.columns.index(str(model._meta.pk.column))
        self.attnames = [f.attname for f in fields]
        self.converters: list[tuple[Any, list[Converter]]] = []
        for field in fields:
            col = field.get_col(self.table)
            found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            self.converters.append((col, found))

    def build(self, values: tuple[Any, ...] | list[Any]) -> models.Model:
        connection = connections[DEFAULT_DB_ALIAS]
        converted = []
        for (col, converters), value in zip(self.converters, values, strict=True):
            for converter in converters:
                value = converter(value, col, connection)
            converted.append(value)
        return self.model.from_db(DEFAULT_DB_ALIAS, self.attnames, converted)


@cache
def _columns(model: type[models.Model]) -> _Columns:
    return _Columns(model)


@cache
def _select(wanted: tuple[type[models.Model], ...]) -> str:
    """``SELECT t0.*, t1.* … FROM (SELECT 1) LEFT JOIN t0 ON t0.pk = %s LEFT JOIN t1 …``:
    one row whatever is absent; an absent row's columns are all NULL, its key among them."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    selected, joins = [], []
    for i, model in enumerate(wanted):
        found = _columns(model)
        pk = quote(found.columns[found.pk_index])
        selected += [f"t{i}.{quote(c)}" for c in found.columns]
        joins.append(f" LEFT JOIN {quote(found.table)} t{i} ON t{i}.{pk} = %s")
    return f"SELECT {', '.join(selected)} FROM (SELECT 1) one{''.join(joins)}"  # noqa: S608


def _storable(pk: int) -> int | None:
    """A key no bigint column can hold matches nothing (the ORM answers empty, too)."""
    return pk if -(2**63) <= pk < 2**63 else None


@overload
def rows_by_pk(first: tuple[type[M], int], /) -> tuple[M | None]: ...
@overload
def rows_by_pk(
    first: tuple[type[M], int], second: tuple[type[N], int], /
) -> tuple[M | None, N | None]: ...
def rows_by_pk(*wanted: tuple[type[models.Model], int]) -> tuple[models.Model | None, ...]:
    """Each ``(model, pk)``'s row as ``model.objects.filter(pk=pk).first()`` would return it,
    all in one round trip; None for a row that is not there."""
    models_ = tuple(model for model, _ in wanted)
    connection = connections[DEFAULT_DB_ALIAS]
    sql, params = _select(models_), [_storable(pk) for _, pk in wanted]
    if connection.vendor == "postgresql":  # planned once per connection, not per request
        row = fetch_one_prepared(sql, params)
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
    assert row is not None  # noqa: S101 - FROM (SELECT 1) yields exactly one row
    found: list[models.Model | None] = []
    start = 0
    for model in models_:
        columns = _columns(model)
        values = row[start : start + len(columns.columns)]
        start += len(columns.columns)
        found.append(None if values[columns.pk_index] is None else columns.build(values))
    return tuple(found)


def row_by_pk(model: type[M], pk: int) -> M | None:
    """``model.objects.filter(pk=pk).first()``, minus the query compiler; None if absent."""
    return rows_by_pk((model, pk))[0]
