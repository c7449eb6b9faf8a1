"""Pages that read decisions: the legal simulator, an employee's "what was captured about me", and rights requests.

They sit here because they read the decision engine and capture grants,
which the apps above may not import. The simulator runs the same service as
``POST /api/v1/simulate`` (``capture_simulate``), so the page and the API can
never disagree.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.contrib import messages
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.actors import Actor
from consent.views import employee_page
from consentry.errors import DomainError
from decisions import engine
from decisions.forms import ErasureConfirmForm, SimulateForm
from decisions.models import CaptureGrant, RightsKind, RightsRequest, RightsStatus
from decisions.rights import (
    erasure_outcome,
    rights_access_downloaded,
    rights_message,
    rights_request_access,
    rights_request_erasure,
    rights_request_of,
    rights_requests_of,
)
from decisions.rights_api import download_response
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
    if scope and form.is_bound and form.is_valid():
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
    # Without a region to simulate in there is no form, only the page saying so.
    page = {"section": "simulate", "form": form if scope else None, "result": result}
    return render(request, "decisions/simulate.html", page)


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


# Rights requests ------------------------------------------------------------------------

# Keyed by RightsStatus; looked up with the plain string the model field holds.
BADGES: dict[str, str] = {
    RightsStatus.RECEIVED: "pending",
    RightsStatus.RUNNING: "running",
    RightsStatus.COMPLETED: "done",
    RightsStatus.FAILED: "failed",
}
RIGHTS_SHOWN = 50


def _card(rights: RightsRequest) -> dict:
    """What the page shows of one request; the same words as the API's ``message``."""
    return {
        "request": rights,
        "badge": BADGES[rights.status],
        "message": rights_message(rights),
        "ready": rights.kind == RightsKind.ACCESS and rights.status == RightsStatus.COMPLETED and bool(rights.file),
        "outcome": erasure_outcome(rights) if rights.kind == RightsKind.ERASURE else None,
    }


@require_GET
@employee_page
def rights_page(request: HttpRequest, employee: Employee) -> HttpResponse:
    """The employee's data rights: ask for a copy or for erasure, and follow each request live."""
    requests = list(rights_requests_of(employee=employee)[:RIGHTS_SHOWN])
    return render(
        request,
        "decisions/rights.html",
        {
            "section": "rights",
            "cards": [_card(item) for item in requests],
            "access_pending": any(item.pending and item.kind == RightsKind.ACCESS for item in requests),
            "erasure_pending": any(item.pending and item.kind == RightsKind.ERASURE for item in requests),
        },
    )


@require_POST
@employee_page
def rights_access(request: HttpRequest, employee: Employee) -> HttpResponse:
    _, created = rights_request_access(employee=employee, user=request.user, actor=Actor.for_user(request.user))
    if created:
        messages.success(request, "We are preparing a copy of your data. This page shows when it is ready.")
    else:
        messages.info(request, "A copy of your data is already being prepared; here it is.")
    return redirect("portal:rights")


@require_http_methods(["GET", "POST"])
@employee_page
def rights_erasure(request: HttpRequest, employee: Employee) -> HttpResponse:
    """A confirmation step that says what erasure does, then the request."""
    form = ErasureConfirmForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            rights, created = rights_request_erasure(
                employee=employee, user=request.user, actor=Actor.for_user(request.user)
            )
        except DomainError as error:
            messages.error(request, error.detail)
            return redirect("portal:rights")
        if created:
            messages.success(
                request, "Your erasure request is recorded. Use of your earlier data is refused from now on."
            )
        else:
            messages.info(request, "Your earlier erasure request is still being carried out; here it is.")
        return redirect("portal:rights_detail", pk=rights.pk)
    preview = erasure_outcome(RightsRequest(kind=RightsKind.ERASURE, status=RightsStatus.RECEIVED))
    return render(request, "decisions/rights_erase.html", {"section": "rights", "form": form, "outcome": preview})


def _own(employee: Employee, pk) -> RightsRequest:
    found = rights_request_of(employee=employee, request_id=pk)
    if found is None:
        raise Http404("No such request.")
    return found


@require_GET
@employee_page
def rights_detail(request: HttpRequest, employee: Employee, pk) -> HttpResponse:
    return render(request, "decisions/rights_detail.html", {"section": "rights", "card": _card(_own(employee, pk))})


@require_GET
@employee_page
def rights_download(request: HttpRequest, employee: Employee, pk) -> HttpResponse | FileResponse:
    """The copy, for its owner only: the same file as the API's download."""
    rights = _own(employee, pk)
    try:
        response = download_response(rights)
    except DomainError as error:
        messages.error(request, error.detail)
        return redirect("portal:rights")
    rights_access_downloaded(rights=rights, actor=Actor.for_user(request.user))
    return response
