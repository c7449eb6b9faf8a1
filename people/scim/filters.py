"""SCIM filters (RFC 7644 §3.4.2.2) as Django queries over employees.

scim2-models parses the filter and checks it against the User schema; this
module walks the tree and emits a ``Q`` for the attributes Consentry stores.
Filtering happens in the database, so a filter over ten thousand employees
costs one indexed query, not a Python loop. An attribute that has no column
here is refused with ``invalidFilter`` rather than silently matching nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q
from pydantic import ValidationError
from scim2_models import InvalidFilterException, Resource, ScimFilter
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterVisitor,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

from people.models import EmployeeStatus
from people.scim.resources import ENTERPRISE_SCHEMA, USER_SCHEMA


@dataclass(frozen=True)
class Column:
    """How one SCIM attribute is stored: its column and how it compares."""

    field: str
    kind: str = "text"  # text, id, bool, datetime, work (the constant type "work")
    case_exact: bool = False


# Keyed by the lower-cased attribute path (RFC 7643 §2.1: names are case-insensitive).
_CORE = {
    "id": Column("pk", "id"),
    "externalid": Column("external_id", case_exact=True),
    "username": Column("user_name"),
    "displayname": Column("display_name"),
    "active": Column("status", "bool"),
    "emails": Column("email"),
    "emails.value": Column("email"),
    "emails.type": Column("email", "work"),
    "addresses.type": Column("country", "work"),
    "addresses.country": Column("country"),
    "addresses.region": Column("subdivision"),
    "meta.created": Column("created_at", "datetime"),
    "meta.lastmodified": Column("updated_at", "datetime"),
}
_ENTERPRISE = {
    "employeenumber": Column("hr_id", case_exact=True),
    "organization": Column("entity"),
    "division": Column("site"),
    "department": Column("department"),
}

_TEXT_LOOKUPS = {
    CompareOperator.eq: "exact",
    CompareOperator.co: "contains",
    CompareOperator.sw: "startswith",
    CompareOperator.ew: "endswith",
    CompareOperator.gt: "gt",
    CompareOperator.ge: "gte",
    CompareOperator.lt: "lt",
    CompareOperator.le: "lte",
}


def _column(path: AttrPath, prefix: str = "") -> Column:
    name = f"{prefix}{path.attr}" + (f".{path.sub_attr}" if path.sub_attr else "")
    key = name.lower()
    uri = (path.uri or "").lower()
    if uri in ("", USER_SCHEMA.lower()) and key in _CORE:
        return _CORE[key]
    if uri in ("", ENTERPRISE_SCHEMA.lower()) and key in _ENTERPRISE:
        return _ENTERPRISE[key]
    raise InvalidFilterException(detail=f"Filtering on {path} is not supported.")


def _moment(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidFilterException(detail=f"{value!r} is not an RFC 3339 date-time.") from exc
    if moment.tzinfo is None:
        raise InvalidFilterException(detail=f"{value!r} has no time zone offset.")
    return moment


class _ToQuery(FilterVisitor[Q]):
    def __init__(self, prefix: str = ""):
        self.prefix = prefix

    def visit_logical_expr(self, node: LogicalExpr) -> Q:
        terms = [self.visit(term) for term in node.terms]
        combined = terms[0]
        for term in terms[1:]:
            combined = combined & term if node.op == LogicalOperator.and_ else combined | term
        return combined

    def visit_not(self, node: Not) -> Q:
        return ~self.visit(node.expr)

    def visit_value_path(self, node: ValuePath) -> Q:
        # Consentry keeps one value of each multi-valued attribute (the work
        # e-mail and the work address), so "any value matches" is "it matches".
        return _ToQuery(prefix=f"{node.attr_path.attr}.").visit(node.val_filter)

    def visit_present(self, node: Present) -> Q:
        column = _column(node.attr_path, self.prefix)
        if column.kind in ("bool", "id", "datetime"):
            return Q(pk__isnull=False)
        return ~Q(**{column.field: ""})

    def visit_comparison(self, node: Comparison) -> Q:
        column = _column(node.attr_path, self.prefix)
        op, value = node.op, node.value
        if column.kind == "work":
            # The only type Consentry keeps is "work", and it exists when its value does.
            query = _text_query("work", op, str(value), case_exact=False)
            return ~Q(**{column.field: ""}) if query else Q(pk__in=[])
        if column.kind == "bool":
            if op not in (CompareOperator.eq, CompareOperator.ne) or not isinstance(value, bool):
                raise InvalidFilterException(detail="active compares only with eq or ne and true or false.")
            active = value if op == CompareOperator.eq else not value
            terminated = Q(status=EmployeeStatus.TERMINATED)
            return ~terminated if active else terminated
        if column.kind == "id":
            if op not in (CompareOperator.eq, CompareOperator.ne):
                raise InvalidFilterException(detail="id compares only with eq or ne.")
            match = Q(pk=int(value)) if str(value).isdigit() else Q(pk__in=[])
            return match if op == CompareOperator.eq else ~match
        if column.kind == "datetime":
            if op in (CompareOperator.co, CompareOperator.sw, CompareOperator.ew):
                raise InvalidFilterException(detail=f"{op.value} does not apply to date-times.")
            moment = _moment(value)
            if op == CompareOperator.ne:
                return ~Q(**{column.field: moment})
            return Q(**{f"{column.field}__{_TEXT_LOOKUPS[op]}": moment})
        if value is None:
            # "eq null" asks for an unassigned attribute, stored as the empty string.
            unassigned = Q(**{column.field: ""})
            return unassigned if op == CompareOperator.eq else ~unassigned
        if op == CompareOperator.ne:
            return ~_lookup(column, CompareOperator.eq, str(value))
        return _lookup(column, op, str(value))


def _lookup(column: Column, op: CompareOperator, value: str) -> Q:
    lookup = _TEXT_LOOKUPS[op]
    if not column.case_exact and lookup in ("exact", "contains", "startswith", "endswith"):
        lookup = f"i{lookup}"
    return Q(**{f"{column.field}__{lookup}": value})


def _text_query(stored: str, op: CompareOperator, value: str, *, case_exact: bool) -> bool:
    """Evaluate a comparison against a constant (the "work" type)."""
    left, right = (stored, value) if case_exact else (stored.lower(), value.lower())
    return {
        CompareOperator.eq: left == right,
        CompareOperator.ne: left != right,
        CompareOperator.co: right in left,
        CompareOperator.sw: left.startswith(right),
        CompareOperator.ew: left.endswith(right),
        CompareOperator.gt: left > right,
        CompareOperator.ge: left >= right,
        CompareOperator.lt: left < right,
        CompareOperator.le: left <= right,
    }[op]


def filter_to_query(expression: str, model: type[Resource[Any]]) -> Q:
    """The ``Q`` selecting the employees ``expression`` matches; InvalidFilterException if it cannot be served."""
    try:
        # scim2-models binds the filter to a model class given at run time, which no static type can name.
        parsed = ScimFilter[model](expression)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise InvalidFilterException(detail=str(exc.errors()[0]["msg"])) from exc
    return _ToQuery().visit(parsed.ast)
