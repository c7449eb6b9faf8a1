"""The employee portal: an employee's own notice, choices, pauses and history.

Every page acts on the signed-in person's own employee record and nothing
else: there is no employee id in any URL, and a receipt id that belongs to
someone else is simply not found. Changes go through ``consent.services``;
the pages only translate a form into a service call and its outcome into
plain words.
"""

from __future__ import annotations

import json
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from audit.actors import Actor
from consent.forms import AcknowledgeForm, ConsentChoicesForm, PauseForm
from consent.selectors import consent_history, opt_in_rates, portal_overview, receipt_inclusion, receipt_of
from consent.serializers import ReceiptSerializer
from consent.services import (
    Choice,
    consent_apply_choices,
    consent_withdraw_all,
    notice_acknowledge,
    pause_end,
    pause_start,
)
from consentry.errors import DomainError
from governance.models import Purpose
from people.models import Employee


def employee_page(view):
    """Signed in, and linked to an employee record: the portal is about that person only."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        user = request.user
        assert user.is_authenticated  # login_required above
        employee = Employee.objects.filter(user=user).first()
        if employee is None:
            raise PermissionDenied("Your account is not linked to an employee record, so there is nothing to show.")
        return view(request, employee, *args, **kwargs)

    return wrapper


def _refused(request: HttpRequest, error: DomainError) -> None:
    """Show a refused change in words: the summary, then each thing to fix."""
    details = [str(message) for message in error.errors.values()]
    messages.error(request, " ".join([error.detail, *details]))


def _back() -> HttpResponse:
    return redirect("portal:home")


@require_GET
@employee_page
def home(request: HttpRequest, employee: Employee) -> HttpResponse:
    overview = portal_overview(employee=employee, at=timezone.now())
    initial: dict[str, int | list[str] | None] = {
        "notice_version": overview.notice.version if overview.notice else None
    }
    initial["grant"] = [item.key for item in overview.items if item.is_on]
    return render(
        request,
        "consent/home.html",
        {
            "section": "home",
            "overview": overview,
            "form": ConsentChoicesForm(initial=initial, overview=overview),
            "pause_form": PauseForm(),
        },
    )


@require_POST
@employee_page
def save_choices(request: HttpRequest, employee: Employee) -> HttpResponse:
    now = timezone.now()
    overview = portal_overview(employee=employee, at=now)
    form = ConsentChoicesForm(request.POST, overview=overview)
    if not form.is_valid():
        problems = [f"{error}" for errors in form.errors.values() for error in errors]
        messages.error(request, "Your choices were not saved. " + " ".join(problems))
        return _back()
    if overview.notice is None or form.cleaned_data["notice_version"] != overview.notice.version:
        messages.error(
            request,
            "The notice changed while you were reading it, so nothing was saved. Please read the new version below "
            "and choose again.",
        )
        return _back()
    grant, withdraw = form.changes()
    if not grant and not withdraw:
        messages.info(request, "Nothing changed: your choices are as they were.")
        return _back()
    choices = [Choice(item.purpose, item.category.slug, True) for item in grant]
    choices += [Choice(item.purpose, item.category.slug, False) for item in withdraw]
    try:
        events = consent_apply_choices(
            employee=employee, notice=overview.notice, choices=choices, actor=Actor.for_user(request.user), at=now
        )
    except DomainError as error:
        _refused(request, error)
        return _back()
    parts = []
    if grant:
        parts.append("turned on " + ", ".join(item.category.name for item in grant))
    if withdraw:
        parts.append("turned off " + ", ".join(item.category.name for item in withdraw))
    messages.success(
        request,
        f"Saved: you {' and '.join(parts)}. {len(events)} signed receipt(s) are in your history.",
    )
    return _back()


@require_POST
@employee_page
def withdraw_everything(request: HttpRequest, employee: Employee) -> HttpResponse:
    events = consent_withdraw_all(employee=employee, actor=Actor.for_user(request.user))
    if events:
        messages.success(
            request,
            f"Everything is withdrawn ({len(events)} item(s)). Nothing more will be captured, and data already "
            "captured will no longer be used.",
        )
    else:
        messages.info(request, "You had nothing turned on, so there was nothing to withdraw.")
    return _back()


@require_POST
@employee_page
def acknowledge(request: HttpRequest, employee: Employee) -> HttpResponse:
    form = AcknowledgeForm(request.POST)
    overview = portal_overview(employee=employee, at=timezone.now())
    if not form.is_valid() or overview.notice is None:
        messages.error(request, "The acknowledgement was not recorded: reload the page and try again.")
        return _back()
    if form.cleaned_data["notice_version"] != overview.notice.version:
        messages.error(request, "The notice changed while you were reading it; please read the new version first.")
        return _back()
    try:
        notice_acknowledge(employee=employee, notice=overview.notice, actor=Actor.for_user(request.user))
    except DomainError as error:
        _refused(request, error)
        return _back()
    messages.success(request, f"Thank you: you acknowledged notice version {overview.notice.version}.")
    return _back()


@require_POST
@employee_page
def pause(request: HttpRequest, employee: Employee) -> HttpResponse:
    form = PauseForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose how long to pause: 30 minutes, 2 hours or until tomorrow morning.")
        return _back()
    now = timezone.now()
    until = form.until(now=now)
    try:
        pause_start(employee=employee, until=until, actor=Actor.for_user(request.user), at=now)
    except DomainError as error:
        _refused(request, error)
        return _back()
    local = until.astimezone(form.cleaned_data["tz"])
    messages.success(request, f"Capture is paused until {local:%A %H:%M} ({local.tzname()}). Nothing is captured.")
    return _back()


@require_POST
@employee_page
def resume(request: HttpRequest, employee: Employee) -> HttpResponse:
    if pause_end(employee=employee, actor=Actor.for_user(request.user)) is None:
        messages.info(request, "Capture was not paused.")
    else:
        messages.success(request, "Capture is resumed for what you have turned on.")
    return _back()


@require_GET
@employee_page
def history(request: HttpRequest, employee: Employee) -> HttpResponse:
    paginator = Paginator(consent_history(employee=employee), settings.CONSENTRY_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    return render(request, "consent/history.html", {"section": "history", "employee": employee, "page": page})


@require_GET
@employee_page
def receipt(request: HttpRequest, employee: Employee, receipt_id: str) -> HttpResponse:
    """The signed receipt as a file: the same document as ``GET /api/v1/me/receipts/<id>``, proof included."""
    found = receipt_of(employee=employee, receipt_id=receipt_id)
    if found is None:
        raise Http404("No such receipt.")
    document = ReceiptSerializer(found, context={"inclusion": receipt_inclusion(receipt=found)}).data
    body = json.dumps(document, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder)
    response = HttpResponse(body + "\n", content_type="application/json; charset=utf-8")
    # Receipt ids are ours (rcpt_ + URL-safe base64), so they are safe in the header as they are.
    response["Content-Disposition"] = f'attachment; filename="consent-receipt-{found.pk}.json"'
    return response


# Legal console: aggregates (they read consent, so they live with it) -------------------


@require_GET
@login_required
@permission_required("people.view_aggregates", raise_exception=True)
def opt_in_rates_page(request: HttpRequest) -> HttpResponse:
    k = settings.CONSENTRY_K_ANONYMITY
    purposes = list(Purpose.objects.filter(prohibited=False).order_by("name"))
    chosen = request.GET.get("purpose") or (purposes[0].slug if purposes else "")
    purpose = next((p for p in purposes if p.slug == chosen), None)
    if purpose is None and purposes:
        messages.error(request, "Choose one of the listed purposes.")
        purpose = purposes[0]
    now = timezone.now()
    tables = []
    if purpose is not None:
        for by, title in (("department", "By department"), ("region", "By region")):
            tables.append((title, by, opt_in_rates(purpose=purpose.slug, k=k, by=by, at=now)))
    return render(
        request,
        "consent/opt_in_rates.html",
        {
            "section": "rates",
            "k": k,
            "purposes": purposes,
            "purpose": purpose,
            "tables": tables,
            "self_url": reverse("legal:opt_in_rates"),
        },
    )
