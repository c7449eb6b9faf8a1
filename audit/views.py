"""The auditor console: search the ledger, export it, see its checkpoints and last verification.

Every page takes the caller's audit access from ``audit.access``, as the API
does. Searching reads only: each query is narrowed to that scope first; an
entry outside it is "not found", like one that does not exist. Exporting
writes through the service the API uses (``services.export_request``), with
the access frozen into the job; an auditor lists and downloads only their own jobs.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from audit import selectors, services
from audit.access import access_for
from audit.forms import AuditSearchForm, ExportForm
from audit.models import AuditCheckpoint, AuditHead, EventType
from consentry.errors import DomainError, Forbidden

# The daily check runs once a day: older than this, the page says it is overdue.
VERIFICATION_OVERDUE = timedelta(hours=26)
CHECKPOINTS_SHOWN = 20
SUBMISSIONS_KEY = "audit_export_submissions"
SUBMISSIONS_KEPT = 20


def auditor_page(view):
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.has_perm("audit.view_auditentry"):
            raise PermissionDenied("The audit console is for auditors.")
        return view(request, *args, **kwargs)

    return wrapper


@require_GET
@auditor_page
def entries(request: HttpRequest) -> HttpResponse:
    access = access_for(request.user)
    form = AuditSearchForm(request.GET or None)
    found = selectors.entries_visible(access=access)
    if form.is_bound and form.is_valid():
        found = form.apply(found)
    elif form.is_bound:
        found = found.none()
    paginator = Paginator(found.order_by("-seq"), settings.CONSENTRY_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/entries.html",
        {
            "section": "entries",
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "access": access,
            "regions": sorted(access.regions),
            "head": AuditHead.objects.filter(pk=1).first(),
            "labels": dict(EventType.choices),
        },
    )


@require_GET
@auditor_page
def entry_detail(request: HttpRequest, seq: int) -> HttpResponse:
    entry = selectors.entry_visible(access=access_for(request.user), seq=seq)
    if entry is None:
        raise Http404("No such entry in your scope.")
    return render(
        request,
        "audit/entry_detail.html",
        {
            "section": "entries",
            "entry": entry,
            "label": dict(EventType.choices).get(entry.event_type, ""),
            "payload_json": json.dumps(entry.payload, indent=2, sort_keys=True, ensure_ascii=False),
        },
    )


@require_http_methods(["GET", "POST"])
@auditor_page
def exports(request: HttpRequest) -> HttpResponse:
    access = access_for(request.user)
    if request.method == "POST":
        form = ExportForm(request.POST)
        if form.is_valid():
            started = _started_exports(request)
            submission = str(form.cleaned_data["submission"] or "")
            if submission and submission in started:
                return redirect(f"{reverse('audit:exports')}#export-{started[submission]}")
            try:
                export = services.export_request(
                    user=request.user, access=access, filters=form.filters(), format=form.cleaned_data["format"]
                )
            except Forbidden as error:
                raise PermissionDenied(error.detail) from error
            except DomainError as error:
                form.add_error(None, error.detail)
            else:
                if submission:
                    _remember_export(request, started, submission, export.pk)
                messages.success(request, "Export started. Its progress shows below; the download appears when done.")
                return redirect(f"{reverse('audit:exports')}#export-{export.pk}")
    else:
        form = ExportForm(initial={"submission": uuid.uuid4()})
    paginator = Paginator(selectors.exports_of(user=request.user), settings.CONSENTRY_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "audit/exports.html",
        {
            "section": "exports",
            "form": form,
            "page": page,
            "jobs": [(job, describe_filters(job.filters)) for job in page.object_list],
            "access": access,
            "regions": sorted(access.regions),
            "any_unfinished": any(job.status not in services.FINISHED for job in page.object_list),
        },
    )


def _started_exports(request: HttpRequest) -> dict[str, str]:
    """Form submissions of this session that already started an export: submission id → export id."""
    started = request.session.get(SUBMISSIONS_KEY)
    return started if isinstance(started, dict) else {}


def _remember_export(request: HttpRequest, started: dict[str, str], submission: str, export_id: uuid.UUID) -> None:
    # The last few are enough: a resubmission comes seconds after the first.
    kept = list(started.items())[-(SUBMISSIONS_KEPT - 1) :]
    request.session[SUBMISSIONS_KEY] = dict([*kept, (submission, str(export_id))])


def describe_filters(filters: dict) -> str:
    """An export's filters in words, for the jobs list."""
    labels = dict(EventType.choices)
    parts = []
    if filters.get("since") or filters.get("until"):
        parts.append(f"from {filters.get('since') or 'the first entry'} until {filters.get('until') or 'the latest'}")
    types = filters.get("event_types") or []
    if types:
        parts.append("types: " + ", ".join(labels.get(kind, kind) for kind in types))
    if filters.get("actor"):
        parts.append(f"actor {filters['actor']}")
    if filters.get("subject"):
        parts.append(f"employee {filters['subject']}")
    return "; ".join(parts) or "Every entry in your scope"


@require_GET
@auditor_page
def checkpoints(request: HttpRequest) -> HttpResponse:
    latest = list(AuditCheckpoint.objects.order_by("-number")[:CHECKPOINTS_SHOWN])
    run = selectors.last_verification()
    return render(
        request,
        "audit/checkpoints.html",
        {
            "section": "checkpoints",
            "checkpoints": [(checkpoint, selectors.checkpoint_signature_valid(checkpoint)) for checkpoint in latest],
            "total": AuditCheckpoint.objects.count(),
            "head": AuditHead.objects.filter(pk=1).first(),
            "queue": selectors.queue_status(now=timezone.now()),
            "run": run,
            "reads_everything": access_for(request.user).all_regions,
            "overdue": run is not None and timezone.now() - run.at > VERIFICATION_OVERDUE,
            "jwks_url": request.build_absolute_uri(reverse("jwks")),
            "api_url": request.build_absolute_uri(reverse("audit:checkpoint-list")),
        },
    )
