"""The auditor console: search the ledger within the auditor's regions, read an entry.

Read-only: nothing here writes. Each query is narrowed to the caller's scope
first (``audit.scope``); an entry outside it is "not found", like one that
does not exist.
"""

from __future__ import annotations

import json
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from audit.forms import AuditSearchForm
from audit.models import AuditEntry, AuditHead, EventType
from audit.scope import audit_scope


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
    scope = audit_scope(request.user)
    form = AuditSearchForm(request.GET or None)
    found = scope.filter(AuditEntry.objects.all())
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
            "scope": scope,
            "head": AuditHead.objects.filter(pk=1).first(),
            "labels": dict(EventType.choices),
        },
    )


@require_GET
@auditor_page
def entry_detail(request: HttpRequest, seq: int) -> HttpResponse:
    entry = audit_scope(request.user).filter(AuditEntry.objects.filter(seq=seq)).first()
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
