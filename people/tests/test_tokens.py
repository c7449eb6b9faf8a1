from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIRequestFactory

from audit.models import AuditEntry, EventType
from conftest import SYSTEM, make_employee, make_user
from consentry.errors import Conflict, DomainError
from people.authentication import BearerTokenAuthentication
from people.models import ApiToken
from people.tokens import hash_token, token_issue, token_resolve, token_revoke

pytestmark = pytest.mark.django_db


def _authenticate(raw: str):
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    return BearerTokenAuthentication().authenticate(request)


def test_the_raw_token_is_never_stored():
    employee = make_employee()
    token, raw = token_issue(kind="device", name="laptop", employee=employee, device_id="laptop-7", actor=SYSTEM)
    stored = ApiToken.objects.get(pk=token.pk)
    assert raw not in {stored.token_hash, stored.prefix} and stored.token_hash == hash_token(raw)
    assert AuditEntry.objects.filter(event_type=EventType.TOKEN_ISSUED).count() == 1
    assert raw not in str(AuditEntry.objects.get(event_type=EventType.TOKEN_ISSUED).payload)


def test_revoked_and_expired_tokens_do_not_resolve():
    token, raw = token_issue(kind="hr", name="workday", actor=SYSTEM)
    assert token_resolve(raw) is not None
    assert token_resolve(raw, at=token.expires_at) is None
    token_revoke(token=token, actor=SYSTEM)
    assert token_resolve(raw) is None


def test_a_token_resolves_in_one_query_with_its_employee_and_user_loaded(django_assert_num_queries):
    employee = make_employee(country="US", subdivision="US-NY")
    device, device_raw = token_issue(kind="device", name="laptop", employee=employee, device_id="d-7", actor=SYSTEM)
    _, pipeline_raw = token_issue(kind="pipeline", name="trainer", purposes=["b", "a"], actor=SYSTEM)
    alice = make_user("alice")
    _, user_raw = token_issue(kind="user", name="alice", user=alice, actor=SYSTEM)

    with django_assert_num_queries(1):
        resolved = token_resolve(device_raw)
        assert resolved is not None and resolved == device and resolved.employee == employee and resolved.user is None
        assert resolved.employee.subdivision == "US-NY" and resolved.expires_at == device.expires_at
    with django_assert_num_queries(1):
        resolved = token_resolve(pipeline_raw)
        assert (
            resolved is not None
            and resolved.purposes == ["a", "b"]
            and resolved.employee is None
            and resolved.revoked_at is None
        )
    with django_assert_num_queries(1):
        resolved = token_resolve(user_raw)
        assert resolved is not None and resolved.user == alice


def test_a_revocation_counts_on_the_next_resolve_with_no_cache_in_between():
    token, raw = token_issue(kind="hr", name="workday", actor=SYSTEM)
    assert token_resolve(raw) is not None
    # Revoked by another process: no delete of any cache entry happens here.
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    assert token_resolve(raw) is None


def test_a_user_token_authenticates_as_its_person_and_a_machine_token_as_nobody():
    alice = make_user("alice")
    _, user_raw = token_issue(kind="user", name="alice", user=alice, actor=SYSTEM)
    _, hr_raw = token_issue(kind="hr", name="workday", actor=SYSTEM)
    assert _authenticate(user_raw)[0] == alice
    user, token = _authenticate(hr_raw)
    assert not user.is_authenticated and token.kind == "hr"


@pytest.mark.parametrize("raw", ["nope", "cst_device_x", "é"])
def test_unknown_tokens_are_refused(raw):
    from rest_framework.exceptions import AuthenticationFailed

    with pytest.raises(AuthenticationFailed):
        _authenticate(raw)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "device", "device_id": "x"}, "employee"),
        ({"kind": "user"}, "user"),
        ({"kind": "pipeline"}, "purposes"),
        ({"kind": "robot"}, "kind"),
        ({"kind": "hr", "lifetime": timedelta(days=400)}, "lifetime"),
    ],
)
def test_incomplete_tokens_are_refused(kwargs, field):
    with pytest.raises(DomainError) as caught:
        token_issue(name="x", actor=SYSTEM, **kwargs)
    assert field in caught.value.errors and not ApiToken.objects.exists()


def test_issue_token_prints_the_token_alone_on_its_last_line(small_policy, capsys):
    employee = make_employee(hr_id="E1001")
    call_command("issue_token", "device", "--employee", "E1001", "--device", "laptop-7")
    raw = capsys.readouterr().out.strip().splitlines()[-1]
    token = token_resolve(raw)
    assert token is not None and token.employee == employee and token.device_id == "laptop-7"
    assert token.expires_at > timezone.now() + timedelta(days=89)


def test_issue_token_refuses_prohibited_and_unknown_purposes(small_policy):
    with pytest.raises(CommandError, match="Prohibited"):
        call_command("issue_token", "pipeline", "--name", "t", "--purpose", "performance_evaluation")
    with pytest.raises(CommandError, match="Unknown"):
        call_command("issue_token", "pipeline", "--name", "t", "--purpose", "mind_reading")
    assert not ApiToken.objects.exists()


def test_no_user_token_is_issued_for_a_disabled_login():
    user = make_user(is_active=False)
    with pytest.raises(Conflict) as caught:
        token_issue(kind="user", name="x", user=user, actor=SYSTEM)
    assert caught.value.code == "user_inactive"
    assert not ApiToken.objects.exists() and not AuditEntry.objects.filter(event_type=EventType.TOKEN_ISSUED).exists()
    with pytest.raises(CommandError, match="active logins"):
        call_command("issue_token", "user", "--username", user.get_username())
