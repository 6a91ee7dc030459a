"""Read one row by primary key without building an ORM query.

The member order endpoint reads the member (from the token) and the store on every request;
``Model.objects.filter(pk=...).first()`` compiles a query each time (ordering, joins setup,
SQL generation: ~0.3 ms of Python), which at flash-sale rates costs more than the database's
work. ``row_by_pk`` keeps one SQL string per model and builds the instance the way the ORM
does for a row it read (``Model.from_db``), so the result is an ordinary model instance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, models

M = TypeVar("M", bound=models.Model)

Converter = Callable[[Any, Any, Any], Any]


class _Select:
    """One model's SQL, attribute names and per-column converters (the backend's, then the
    field's: what the ORM's compiler applies to a row it read)."""

    def __init__(self, model: type[models.Model]) -> None:
        connection = connections[DEFAULT_DB_ALIAS]
        quote = connection.ops.quote_name
        fields = model._meta.concrete_fields
        columns = ", ".join(quote(str(f.column)) for f in fields)
        pk = quote(str(model._meta.pk.column))
        self.sql = f"SELECT {columns} FROM {quote(model._meta.db_table)} WHERE {pk} = %s"  # noqa: S608
        self.attnames = [f.attname for f in fields]
        self.converters: list[tuple[Any, list[Converter]]] = []
        for field in fields:
            col = field.get_col(model._meta.db_table)
            found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            self.converters.append((col, found))


_selects: dict[type[models.Model], _Select] = {}


def row_by_pk(model: type[M], pk: int) -> M | None:
    """``model.objects.filter(pk=pk).first()``, minus the query compiler; None if absent.
    Values come back through each field's ``from_db_value`` converters, as with the ORM."""
    if not -(2**63) <= pk < 2**63:  # no such key (the ORM answers empty, too)
        return None
    select = _selects.get(model)
    if select is None:
        select = _selects[model] = _Select(model)
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute(select.sql, [pk])
        row = cursor.fetchone()
    if row is None:
        return None
    values = []
    for (col, converters), value in zip(select.converters, row, strict=True):
        for converter in converters:
            value = converter(value, col, connection)
        values.append(value)
    return model.from_db(DEFAULT_DB_ALIAS, select.attnames, values)
