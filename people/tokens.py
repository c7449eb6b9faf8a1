"""Issuing, resolving, listing and revoking bearer tokens, and who may do which.

The API (``decisions/api.py``) and the staff page (``decisions/token_views.py``)
ask the same functions here, so the two can never disagree on who sees or
revokes a token.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db import connection, models, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from audit.actors import Actor
from audit.models import EventType
from audit.services import record
from consentry.errors import Conflict, DomainError
from consentry.outbox import GrantRevoked, Topic, publish
from consentry.rows import ModelRows
from people.models import ApiToken, Employee, TokenKind

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

DEFAULT_LIFETIME = timedelta(days=90)
MAX_LIFETIME = timedelta(days=366)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_issue(
    *,
    kind: str,
    name: str,
    actor: Actor,
    employee: Employee | None = None,
    device_id: str = "",
    user: User | None = None,
    purposes: Iterable[str] = (),
    lifetime: timedelta = DEFAULT_LIFETIME,
) -> tuple[ApiToken, str]:
    """Create a token and return it with its raw value, which is never stored or shown again."""
    errors: dict[str, str] = {}
    if kind not in TokenKind.values:
        errors["kind"] = f"{kind!r} is not one of {', '.join(TokenKind.values)}."
    if kind == TokenKind.DEVICE and (employee is None or not device_id):
        errors["employee"] = "A device token needs an employee and a device id."
    if kind == TokenKind.USER and user is None:
        errors["user"] = "A user token needs a user."
    purposes = sorted(set(purposes))
    if kind == TokenKind.PIPELINE and not purposes:
        errors["purposes"] = "A pipeline token needs at least one purpose."
    if not timedelta(0) < lifetime <= MAX_LIFETIME:
        errors["lifetime"] = "A token lives between one second and one year."
    if errors:
        raise DomainError("The token cannot be issued.", code="invalid", errors=errors)
    if employee is not None and not employee.is_active:
        raise Conflict("Tokens are issued only for active employees.", code="employee_inactive")
    if kind == TokenKind.USER and user is not None and not user.is_active:
        # A disabled login (a terminated employee's, a deactivated account) is refused at every
        # request anyway; a token for it would only look like access that does not exist.
        raise Conflict("Tokens are issued only for active logins.", code="user_inactive")
    raw = f"cst_{kind}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        token = ApiToken.objects.create(
            kind=kind,
            name=name or f"{kind} token",
            prefix=raw[: len(f"cst_{kind}_") + 6],
            token_hash=hash_token(raw),
            employee=employee if kind == TokenKind.DEVICE else None,
            device_id=device_id if kind == TokenKind.DEVICE else "",
            user=user if kind == TokenKind.USER else None,
            purposes=purposes if kind == TokenKind.PIPELINE else [],
            created_by=actor.label,
            expires_at=timezone.now() + lifetime,
        )
        record(
            event_type=EventType.TOKEN_ISSUED,
            actor=actor,
            subject=employee.hr_id if employee else "",
            object_type="api_token",
            object_id=token.pk,
            payload={
                "kind": kind,
                "name": token.name,
                "prefix": token.prefix,
                "device_id": token.device_id,
                "user": user.get_username() if user else None,
                "purposes": token.purposes,
                "expires_at": token.expires_at,
            },
        )
    return token, raw


def token_revoke(*, token: ApiToken, actor: Actor) -> ApiToken:
    """Revoke a token at once; later requests with it get 401. Idempotent."""
    with transaction.atomic():
        # NO KEY: a grant issued under this token checks its foreign key at commit, holding the
        # ledger's head lock this transaction is about to wait for (decisions/tests/test_lock_order.py).
        token = ApiToken.objects.select_for_update(no_key=True).get(pk=token.pk)
        if token.revoked_at is not None:
            return token
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record(
            event_type=EventType.TOKEN_REVOKED,
            actor=actor,
            subject=token.employee.hr_id if token.employee is not None else "",
            object_type="api_token",
            object_id=token.pk,
            payload={"kind": token.kind, "prefix": token.prefix},
        )
        if token.kind == TokenKind.DEVICE:
            # token_device_bound: a device token always has its employee.
            assert token.employee_id is not None
            # The device's live grants stop now, not at their expiry: the feed says so after commit.
            publish(
                topic=Topic.GRANT_REVOKED,
                payload=GrantRevoked(employee=token.employee_id, token=token.pk, at=token.revoked_at),
            )
    return token


# Who may see, issue and revoke tokens ---------------------------------------------------


class TokenState(models.TextChoices):
    """What a token answers now: only an active one authenticates."""

    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


def token_state(token: ApiToken, *, at: datetime) -> str:
    if token.revoked_at is not None:
        return TokenState.REVOKED
    if token.expires_at <= at:
        return TokenState.EXPIRED
    return TokenState.ACTIVE


def tokens_visible_to(user: User | AnonymousUser) -> QuerySet[ApiToken]:
    """Every token for staff who may view tokens; for anyone else only the user tokens that act as them."""
    tokens = ApiToken.objects.select_related("employee", "user").order_by("-created_at", "-pk")
    if not user.is_authenticated:
        return tokens.none()
    if user.has_perm("people.view_apitoken"):
        return tokens
    return tokens.filter(kind=TokenKind.USER, user=user)


def tokens_filter(
    tokens: QuerySet[ApiToken], *, at: datetime, kind: str = "", state: str = "", search: str = ""
) -> QuerySet[ApiToken]:
    """Narrow a token list by kind, state now, and a search over name, prefix, device, HR id and username."""
    if kind:
        tokens = tokens.filter(kind=kind)
    if state == TokenState.REVOKED:
        tokens = tokens.filter(revoked_at__isnull=False)
    elif state == TokenState.EXPIRED:
        tokens = tokens.filter(revoked_at__isnull=True, expires_at__lte=at)
    elif state == TokenState.ACTIVE:
        tokens = tokens.filter(revoked_at__isnull=True, expires_at__gt=at)
    search = search.strip()
    if search:
        tokens = tokens.filter(
            Q(name__icontains=search)
            | Q(prefix__startswith=search)
            | Q(device_id__icontains=search)
            | Q(employee__hr_id__iexact=search)
            | Q(user__username__iexact=search)
        )
    return tokens


def token_may_revoke(user: User | AnonymousUser, token: ApiToken) -> bool:
    """Staff with change permission revoke any token; a person may always revoke a token that acts as them."""
    if not user.is_authenticated:
        return False
    own = token.kind == TokenKind.USER and token.user_id is not None and token.user_id == user.pk
    return own or user.has_perm("people.change_apitoken")


def token_kinds_issuable_by(user: User | AnonymousUser) -> list[str]:
    """The kinds of token this person may issue on the staff page, in menu order.

    Issuing needs ``people.add_apitoken``. Nobody hands out more than they
    hold: an HR token creates and changes employees, so it also needs those
    permissions; a user token is issued only for oneself (the page never
    offers one acting as somebody else; an operator can, with ``issue_token``).
    """
    if not user.is_authenticated or not user.has_perm("people.add_apitoken"):
        return []
    kinds = [TokenKind.DEVICE, TokenKind.PIPELINE, TokenKind.USER]
    if user.has_perm("people.add_employee") and user.has_perm("people.change_employee"):
        kinds.append(TokenKind.HR)
    return [str(kind) for kind in kinds]


# Resolving a presented token --------------------------------------------------------------


@cache
def _resolve_query() -> tuple[str, ModelRows[ApiToken], ModelRows[Employee], ModelRows[User]]:
    """The token with its employee and user, as ``select_related`` would read them: built once."""
    q = connection.ops.quote_name
    token, employee, user = ModelRows(ApiToken, "t"), ModelRows(Employee, "e"), ModelRows(get_user_model(), "u")
    sql = (
        f"SELECT {token.columns}, {employee.columns}, {user.columns} FROM {token.table} "  # noqa: S608
        f"LEFT JOIN {employee.table} ON e.{q('id')} = t.{q('employee_id')} "
        f"LEFT JOIN {user.table} ON u.{q('id')} = t.{q('user_id')} WHERE t.{q('token_hash')} = %s"
    )
    return sql, token, employee, user


def token_resolve(raw: str, *, at: datetime | None = None) -> ApiToken | None:
    """The live token for ``raw``, or None when unknown, expired or revoked.

    Read afresh on every request, never cached: a revocation, an expiry or a
    deactivated user counts on the very next request, in every process. One
    indexed read in plain SQL (``consentry.rows``): every machine request
    authenticates, and compiling the equivalent queryset cost several times
    the read itself.
    """
    moment = at or timezone.now()
    sql, tokens, employees, users = _resolve_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, [hash_token(raw)])
        row = cursor.fetchone()
    if row is None:
        return None
    token = tokens.instance(row[: len(tokens)])
    # The row was found by the token's own column, so its part of the row is never the empty outer-join side.
    assert token is not None
    if token.revoked_at is not None or token.expires_at <= moment:
        return None
    employee_end = len(tokens) + len(employees)
    token._state.fields_cache["employee"] = employees.instance(row[len(tokens) : employee_end])
    token._state.fields_cache["user"] = users.instance(row[employee_end:])
    return token
