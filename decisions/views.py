"""Pages that read decisions: the legal simulator and an employee's "what was captured about me".

They sit here because they read the decision engine and capture grants,
which the apps above may not import. The simulator runs the same service as
``POST /api/v1/simulate`` (``capture_simulate``), so the page and the API can
never disagree.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from consent.views import employee_page
from decisions import engine
from decisions.forms import SimulateForm
from decisions.models import CaptureGrant
from decisions.services import SIMULATION_ASSUMPTIONS, capture_simulate
from decisions.snapshot import current_policy
from governance.models import DataCategory, Purpose
from governance.permissions import regions_viewable
from governance.views import legal_page
from people.models import Employee, EmployeeStatus

ASSUMPTION_WORDS = {
    "consent_granted_under_current_notice": "The employee has opted in to every chosen category under the notice "
    "in force (their real choices are theirs alone).",
    "not_paused": "The employee has not paused capture.",
}
# How far back "what was captured about me" looks.
CAPTURED_DAYS = 90


def _subject(form: SimulateForm, scope: set[str]) -> Employee | None:
    """The employee to simulate for (a real one, or a new one in a region), if in the caller's scope."""
    data = form.cleaned_data
    if data["who"] == "region":
        code = data["region"]
        country = code.split("-", 1)[0]
        # Not saved: a new hire there, with no acknowledgement or personal release yet.
        return Employee(
            hr_id=f"(new employee in {code})",
            country=country,
            subdivision=code if "-" in code else "",
            status=EmployeeStatus.ACTIVE,
        )
    employee = Employee.objects.filter(hr_id=data["employee"].strip()).first()
    chain = current_policy().chain(employee.country, employee.subdivision) if employee else ()
    if employee is None or not scope.intersection(chain):
        # The same answer for unknown and out of scope: the page does not reveal who works where.
        form.add_error("employee", "No employee with that HR id works in the regions you cover.")
        return None
    return employee


@require_GET
@legal_page
def simulate(request: HttpRequest) -> HttpResponse:
    regions = list(regions_viewable(request.user).order_by("code"))
    scope = {region.code for region in regions}
    form = SimulateForm(request.GET or None, regions=regions)
    result = None
    if not scope:
        form = None
    elif form.is_bound and form.is_valid():
        employee = _subject(form, scope)
        if employee is not None:
            data = form.cleaned_data
            at = data["at"] or timezone.now()
            context = engine.Context(app=data["app"].strip(), domain=data["domain"].strip())
            outcome = capture_simulate(
                employee=employee,
                request=engine.CaptureRequest(
                    purpose=data["purpose"], categories=tuple(data["categories"]), context=context
                ),
                at=at,
            )
            names = dict(DataCategory.objects.values_list("slug", "name"))
            result = {
                "employee": employee,
                "purpose": Purpose.objects.get(slug=data["purpose"]),
                "at": at,
                "policy_version": outcome.decision.policy_version,
                "rows": [
                    {"category": names.get(row.category, row.category), "allowed": row.allowed, "reasons": row.reasons}
                    for row in outcome.decision.categories
                ],
                "assumptions": [ASSUMPTION_WORDS.get(code, code) for code in SIMULATION_ASSUMPTIONS],
                "new_hire": employee.pk is None,
            }
    return render(request, "decisions/simulate.html", {"section": "simulate", "form": form, "result": result})


@require_GET
@employee_page
def captured(request: HttpRequest, employee: Employee) -> HttpResponse:
    """Capture grants issued for the employee, per day and category: what agents were allowed to record."""
    since = timezone.now() - timedelta(days=CAPTURED_DAYS)
    rows = (
        CaptureGrant.objects.filter(employee=employee, issued_at__gte=since)
        .annotate(day=TruncDate("issued_at"))
        .values("day", "purpose", "categories")
        .annotate(grants=Count("id"), devices=Count("device_id", distinct=True))
        .order_by("-day")
    )
    names = dict(DataCategory.objects.values_list("slug", "name"))
    purposes = dict(Purpose.objects.values_list("slug", "name"))
    days: dict = defaultdict(lambda: defaultdict(int))
    for row in rows:
        for category in row["categories"]:
            days[row["day"]][(purposes.get(row["purpose"], row["purpose"]), names.get(category, category))] += row[
                "grants"
            ]
    table = [
        {"day": day, "items": sorted((purpose, category, count) for (purpose, category), count in counts.items())}
        for day, counts in sorted(days.items(), reverse=True)
    ]
    return render(
        request,
        "decisions/captured.html",
        {"section": "captured", "days": table, "window": CAPTURED_DAYS, "employee": employee},
    )
