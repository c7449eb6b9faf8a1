"""Rate limits: per person and per machine token, a bucket per scope, 429 problem+json with Retry-After."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from consentry.env import env_rate
from people.authentication import IsDeviceToken

pytestmark = pytest.mark.django_db
CONSENT = "/api/v1/me/consent"


@pytest.fixture
def tight(settings):
    settings.CONSENTRY_RATE_LIMITS = {"api": "3/minute", "decisions": "5/minute", "anon": "2/minute"}


class DecisionLikeView(APIView):
    """Stands in for the capture decision endpoint: a device-token view in the "decisions" scope."""

    permission_classes = [IsDeviceToken]
    throttle_scope = "decisions"

    def get(self, request):
        return Response({"ok": True})


def test_the_request_over_the_limit_is_a_429_problem_with_retry_after(tight, small_policy, ny_employee):
    client = APIClient()
    client.force_login(ny_employee.user)
    assert [client.get(CONSENT).status_code for _ in range(3)] == [200, 200, 200]
    response = client.get(CONSENT)
    assert response.status_code == 429
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 60


def test_each_person_has_their_own_allowance(tight, small_policy, ny_employee, de_employee):
    nina, dieter = APIClient(), APIClient()
    nina.force_login(ny_employee.user)
    dieter.force_login(de_employee.user)
    for _ in range(3):
        nina.get(CONSENT)
    assert nina.get(CONSENT).status_code == 429
    assert dieter.get(CONSENT).status_code == 200


def test_a_person_is_limited_across_session_and_user_token(tight, small_policy, ny_employee):
    from conftest import SYSTEM
    from people.tokens import token_issue

    session = APIClient()
    session.force_login(ny_employee.user)
    token = APIClient()
    token.credentials(
        HTTP_AUTHORIZATION=f"Bearer {token_issue(kind='user', name='cli', user=ny_employee.user, actor=SYSTEM)[1]}"
    )
    for _ in range(3):
        session.get(CONSENT)
    assert token.get(CONSENT).status_code == 429


def test_machine_tokens_are_limited_each_on_their_own_in_the_decisions_scope(tight, small_policy, ny_employee):
    from conftest import SYSTEM
    from people.tokens import token_issue

    laptop = token_issue(kind="device", name="a", employee=ny_employee, device_id="laptop", actor=SYSTEM)[1]
    desktop = token_issue(kind="device", name="b", employee=ny_employee, device_id="desktop", actor=SYSTEM)[1]
    view = DecisionLikeView.as_view()
    factory = APIRequestFactory()

    def call(raw):
        return view(factory.get("/decide", HTTP_AUTHORIZATION=f"Bearer {raw}")).status_code

    # The decisions scope allows 5, more than the api scope's 3.
    assert [call(laptop) for _ in range(5)] == [200] * 5
    assert call(laptop) == 429
    assert call(desktop) == 200


def test_the_decisions_scope_does_not_eat_the_api_allowance(tight, small_policy, ny_employee):
    from conftest import SYSTEM
    from people.tokens import token_issue

    raw = token_issue(kind="device", name="a", employee=ny_employee, device_id="laptop", actor=SYSTEM)[1]
    view = DecisionLikeView.as_view()
    for _ in range(5):
        view(APIRequestFactory().get("/decide", HTTP_AUTHORIZATION=f"Bearer {raw}"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    # Same token on an api-scope endpoint: its own bucket (and a 403 for a device token, not a 429).
    assert client.get(CONSENT).status_code == 403


def test_anonymous_callers_are_refused_before_counting(tight):
    client = APIClient()
    assert [client.get(CONSENT).status_code for _ in range(4)] == [401] * 4


def test_a_failing_cache_refuses_with_503_rather_than_running_unlimited(small_policy, ny_employee, monkeypatch):
    from consentry.throttling import CallerRateThrottle

    def broken(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(CallerRateThrottle.cache, "get", broken)
    client = APIClient()
    client.force_login(ny_employee.user)
    response = client.get(CONSENT)
    assert response.status_code == 503 and response.json()["code"] == "dependency_unavailable"


def test_a_scope_can_be_switched_off(settings, small_policy, ny_employee):
    settings.CONSENTRY_RATE_LIMITS = {"api": None, "decisions": None, "anon": None}
    client = APIClient()
    client.force_login(ny_employee.user)
    assert {client.get(CONSENT).status_code for _ in range(20)} == {200}


@pytest.mark.parametrize("value", ["lots", "0/minute", "10/fortnight", "10"])
def test_a_malformed_rate_stops_start_up(monkeypatch, value):
    monkeypatch.setenv("CONSENTRY_RATE_API", value)
    with pytest.raises(ImproperlyConfigured):
        env_rate("CONSENTRY_RATE_API", "600/minute")


def test_rates_parse_from_the_environment(monkeypatch):
    monkeypatch.setenv("CONSENTRY_RATE_API", "120/Minute")
    assert env_rate("CONSENTRY_RATE_API", "600/minute") == "120/minute"
    monkeypatch.setenv("CONSENTRY_RATE_API", "off")
    assert env_rate("CONSENTRY_RATE_API", "600/minute") is None


def test_scim_provisioning_has_its_own_rate(settings, small_policy):
    from conftest import SYSTEM
    from people.tokens import token_issue

    settings.CONSENTRY_RATE_LIMITS = {
        "api": "1/minute",
        "decisions": "1/minute",
        "anon": "1/minute",
        "provisioning": "3/minute",
    }
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_issue(kind='hr', name='workday', actor=SYSTEM)[1]}")
    statuses = [client.get("/scim/v2/ServiceProviderConfig").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
