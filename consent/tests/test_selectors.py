"""Opt-in rates: k-anonymous aggregates only (Principle 4)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from conftest import SYSTEM, make_employee, make_user
from consent.selectors import opt_in_rates
from consent.services import consent_grant, consent_withdraw_all
from consentry.tests.roles import make_legal, sign_in

pytestmark = pytest.mark.django_db


def _staff(policy, *, department: str, count: int, opted_in: int, subdivision: str = "US-TX"):
    people = [make_employee(country="US", subdivision=subdivision, department=department) for _ in range(count)]
    for employee in people[:opted_in]:
        consent_grant(
            employee=employee, notice=policy["notice"], choices=[("ai_agent_training", "keystrokes")], actor=SYSTEM
        )
    return people


def test_groups_of_at_least_k_show_their_rate_and_smaller_groups_show_nothing(small_policy):
    _staff(small_policy, department="Engineering", count=4, opted_in=3)
    _staff(small_policy, department="Support", count=2, opted_in=1, subdivision="US-CA")
    rates = {r.group: r for r in opt_in_rates(purpose="ai_agent_training", k=3, by="department", at=timezone.now())}
    assert (rates["Engineering"].people, rates["Engineering"].percent) == (4, 75)
    assert rates["Support"].shown is False and rates["Support"].people is None and rates["Support"].percent is None
    by_region = {r.group: r for r in opt_in_rates(purpose="ai_agent_training", k=3, by="region", at=timezone.now())}
    assert by_region["US-TX"].percent == 75 and not by_region["US-CA"].shown


def test_withdrawn_and_expired_consent_does_not_count_as_opted_in(small_policy):
    people = _staff(small_policy, department="Engineering", count=3, opted_in=3)
    consent_withdraw_all(employee=people[0], actor=SYSTEM)
    later = timezone.now() + timedelta(days=400)
    now_rates = opt_in_rates(purpose="ai_agent_training", k=3, by="department", at=timezone.now())
    assert now_rates[0].opted_in == 2
    assert opt_in_rates(purpose="ai_agent_training", k=3, by="department", at=later)[0].opted_in == 0


def test_grouping_by_anything_else_is_refused(small_policy):
    with pytest.raises(ValueError, match="cannot group"):
        opt_in_rates(purpose="ai_agent_training", k=3, by="employee", at=timezone.now())


def test_the_rates_page_hides_small_groups_and_never_names_anyone(client, small_policy, settings):
    settings.CONSENTRY_K_ANONYMITY = 3
    people = _staff(small_policy, department="Engineering", count=3, opted_in=1)
    _staff(small_policy, department="Legal", count=1, opted_in=1)
    sign_in(client, make_legal(make_user("lena"), small_policy["regions"]["US"]))
    html = client.get(reverse("legal:opt_in_rates")).content.decode()
    assert "33%" in html
    assert "Fewer than 3 people: hidden" in html
    for employee in people:
        assert employee.hr_id not in html and employee.display_name not in html


def test_the_rates_page_refuses_employees_and_answers_any_purpose_parameter(client, small_policy, ny_employee):
    sign_in(client, ny_employee.user)
    assert client.get(reverse("legal:opt_in_rates")).status_code == 403
    sign_in(client, make_legal(make_user("lena"), small_policy["regions"]["US"]))
    for value in ("performance_evaluation", "nope", "<b>x</b>", ""):
        assert client.get(reverse("legal:opt_in_rates"), {"purpose": value}).status_code == 200
