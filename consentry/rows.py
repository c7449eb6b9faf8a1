"""Model instances read and written with plain SQL, for the few statements that run on every decision.

Compiling a queryset (joins, select lists, lookups) costs several times the
round trip of a primary-key read; on the capture path it was most of the CPU
a decision took. ``ModelRows`` builds the select list of one model once, and
turns a row back into an instance the way the ORM does (the backend's and the
fields' converters, then ``Model.from_db``), so callers get ordinary model
instances that behave as if loaded by a queryset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from django.db import connection, models

M = TypeVar("M", bound=models.Model)


def _column(field: models.Field[Any, Any]) -> str:
    # Django calls a field concrete exactly when it has a column, and only concrete fields come here.
    assert field.column is not None
    return field.column


class ModelRows(Generic[M]):
    """The columns of ``model`` under a table alias, and instances from rows of them."""

    def __init__(self, model: type[M], alias: str):
        self.model = model
        self.alias = alias
        self.fields = list(model._meta.concrete_fields)
        self.attnames = [field.attname for field in self.fields]
        self._converters: list[tuple[int, list[Any], Any]] | None = None

    @property
    def table(self) -> str:
        return f"{connection.ops.quote_name(self.model._meta.db_table)} {self.alias}"

    @property
    def columns(self) -> str:
        quote = connection.ops.quote_name
        return ", ".join(f"{self.alias}.{quote(_column(field))}" for field in self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def converters(self) -> list[tuple[int, list[Any], Any]]:
        # The same converters a queryset applies (compiler.get_converters), found once per process.
        if self._converters is None:
            found = []
            for index, field in enumerate(self.fields):
                column = field.get_col(self.alias)
                chain = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
                if chain:
                    found.append((index, chain, column))
            self._converters = found
        return self._converters

    def instance(self, values: Sequence[Any]) -> M | None:
        """The instance for ``values`` (this model's columns, in order), or None for a missing outer-join row."""
        if values[0] is None:
            return None
        row = list(values)
        for index, chain, column in self.converters():
            value = row[index]
            for convert in chain:
                value = convert(value, column, connection)
            row[index] = value
        return self.model.from_db(connection.alias, self.attnames, row)


def insert(instance: models.Model) -> None:
    """INSERT one instance whose primary key is already set, without compiling a queryset."""
    meta = instance._meta
    fields = list(meta.concrete_fields)
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(_column(field)) for field in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    values = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
    instance._state.adding = False
    instance._state.db = connection.alias
