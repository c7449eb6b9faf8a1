"""The legal console: regions and their rules, drafts and approvals, instruments, catalogue.

Every page needs the role's model permission; every region-bound page and
action also needs the region object permission (``governance.permissions``),
checked here before the service is called. The services keep their own
checks (four eyes, overlaps, validity): a refusal comes back as a message or
a form error, never as a crash.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import wraps
from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.actors import Actor
from consentry.errors import DomainError
from governance import services
from governance.forms import InstrumentForm, PackExportForm, PackImportForm, RuleDraftForm, attach_errors
from governance.models import (
    ApprovalState,
    ContextExclusion,
    DataCategory,
    JurisdictionRule,
    LegalInstrument,
    Notice,
    Purpose,
    Region,
    RetentionPolicy,
)
from governance.packs import PackError, PackInvalid, check_pack, export_pack, parse_pack
from governance.packs.importing import pack_import
from governance.permissions import (
    can_approve_region,
    can_load_packs,
    can_manage_region,
    can_view_region,
    regions_managed,
    regions_viewable,
)
from governance.rule_diff import rule_diff
from governance.selectors import region_overview, rules_in_force
from people.iso3166 import country_name

STATUS_WORDS = {"allow": "Allowed", "conditional": "Conditional", "block": "Blocked", "unknown": "No rule: denied"}


def legal_page(view):
    """Signed in with the legal console's model permission (legal or approver role)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.has_perm("governance.view_jurisdictionrule"):
            raise PermissionDenied("The legal console is for legal and approver roles.")
        return view(request, *args, **kwargs)

    return wrapper


def _region_in_view(request: HttpRequest, code: str) -> Region:
    region = get_object_or_404(Region, code=code)
    if not can_view_region(request.user, region):
        raise PermissionDenied(f"Your account does not cover {region.code} ({region.name}).")
    return region


def _rule_in_force(region: Region, *, at) -> JurisdictionRule | None:
    return JurisdictionRule.objects.filter(rules_in_force(at=at), region=region).first()


# Regions -----------------------------------------------------------------------------


@require_GET
@legal_page
def regions(request: HttpRequest) -> HttpResponse:
    rows = region_overview(at=timezone.now())
    viewable = set(regions_viewable(request.user).values_list("code", flat=True))
    return render(
        request,
        "governance/regions.html",
        {
            "section": "regions",
            "yours": [row for row in rows if row.region.code in viewable],
            "others": [row for row in rows if row.region.code not in viewable],
            "tile_groups": _tile_groups(rows),
            "viewable": viewable,
            "status_words": STATUS_WORDS,
        },
    )


def _tile_groups(rows) -> list[tuple[str, list]]:
    """Tiles grouped the way people picture the map: groups, their members, each federal country."""
    groups: OrderedDict[str, list] = OrderedDict()
    groups["Groups of countries"] = [row for row in rows if row.region.kind == "group"]
    federal = sorted({row.country for row in rows if row.region.kind == "subdivision"})
    for country in federal:
        groups[country_name(country) or country] = [row for row in rows if row.country == country]
    for row in rows:
        if row.region.kind != "country" or row.country in federal:
            continue
        memberships = sorted(group.code for group in row.region.groups.all())
        title = f"Members of {' and '.join(memberships)}" if memberships else "Other countries"
        groups.setdefault(title, []).append(row)
    if "Other countries" in groups:
        groups.move_to_end("Other countries")
    return [(title, members) for title, members in groups.items() if members]


@require_GET
@legal_page
def region_detail(request: HttpRequest, code: str) -> HttpResponse:
    region = _region_in_view(request, code)
    now = timezone.now()
    rules = list(JurisdictionRule.objects.filter(region=region).select_related("created_by", "approved_by"))
    current = _rule_in_force(region, at=now)
    return render(
        request,
        "governance/region_detail.html",
        {
            "section": "regions",
            "region": region,
            "current": current,
            "drafts": [r for r in rules if r.state == ApprovalState.DRAFT],
            "scheduled": [r for r in rules if r.state == ApprovalState.APPROVED and r.effective_from > now],
            "past": [
                r
                for r in rules
                if r.state == ApprovalState.SUPERSEDED
                or (r.state == ApprovalState.APPROVED and r.effective_to is not None and r.effective_to <= now)
            ],
            "instruments": LegalInstrument.objects.filter(region=region).select_related("employee"),
            "can_manage": can_manage_region(request.user, region),
            "members": region.members.order_by("code"),
        },
    )


# Rules -------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@legal_page
def rule_draft(request: HttpRequest, code: str) -> HttpResponse:
    region = _region_in_view(request, code)
    if not can_manage_region(request.user, region):
        raise PermissionDenied(f"You may not draft rules for {region.code}: it is outside your regions.")
    now = timezone.now()
    current = _rule_in_force(region, at=now)
    if request.method == "POST":
        form = RuleDraftForm(request.POST)
        if form.is_valid():
            try:
                rule = services.rule_draft(
                    region=region, supersedes=current, actor=Actor.for_user(request.user), **form.service_arguments()
                )
            except DomainError as error:
                attach_errors(form, error)
            else:
                messages.success(
                    request, f"Draft saved. It changes nothing until a second person approves it (rule #{rule.pk})."
                )
                return redirect("legal:rule", pk=rule.pk)
    else:
        form = RuleDraftForm(initial=RuleDraftForm.initial_from(current, now=now))
    return render(
        request,
        "governance/rule_form.html",
        {"section": "regions", "region": region, "current": current, "form": form},
    )


def _rule_in_view(request: HttpRequest, pk: int) -> JurisdictionRule:
    rule = get_object_or_404(JurisdictionRule.objects.select_related("region", "created_by", "approved_by"), pk=pk)
    if not can_view_region(request.user, rule.region):
        raise PermissionDenied(f"Your account does not cover {rule.region_id}: this rule is out of your scope.")
    return rule


@require_GET
@legal_page
def rule_detail(request: HttpRequest, pk: int) -> HttpResponse:
    rule = _rule_in_view(request, pk)
    base = rule.supersedes
    if base is None and rule.state == ApprovalState.DRAFT:
        base = _rule_in_force(rule.region, at=timezone.now())
    names = dict(DataCategory.objects.values_list("slug", "name"))
    return render(
        request,
        "governance/rule_detail.html",
        {
            "section": "regions",
            "rule": rule,
            "base": base,
            "diff": rule_diff(old=base, new=rule, category_names=names),
            "can_manage": can_manage_region(request.user, rule.region),
            "can_approve": can_approve_region(request.user, rule.region),
            "is_author": rule.created_by_id == request.user.pk,
        },
    )


@require_POST
@legal_page
def rule_approve(request: HttpRequest, pk: int) -> HttpResponse:
    rule = _rule_in_view(request, pk)
    if not can_approve_region(request.user, rule.region):
        raise PermissionDenied(f"You may not approve rules for {rule.region_id}.")
    try:
        services.rule_approve(rule=rule, actor=Actor.for_user(request.user))
    except DomainError as error:
        messages.error(request, f"Not approved: {error.detail}")
    else:
        messages.success(request, f"Approved. Rule #{rule.pk} now decides for {rule.region_id} from its start date.")
    return redirect("legal:rule", pk=rule.pk)


@require_POST
@legal_page
def rule_discard(request: HttpRequest, pk: int) -> HttpResponse:
    rule = _rule_in_view(request, pk)
    if not can_manage_region(request.user, rule.region):
        raise PermissionDenied(f"You may not discard drafts for {rule.region_id}.")
    try:
        services.rule_discard_draft(rule=rule, actor=Actor.for_user(request.user))
    except DomainError as error:
        messages.error(request, f"Not discarded: {error.detail}")
        return redirect("legal:rule", pk=rule.pk)
    messages.success(request, f"Draft #{pk} discarded.")
    return redirect("legal:region", code=rule.region_id)


# Legal instruments ----------------------------------------------------------------------


@require_GET
@legal_page
def instruments(request: HttpRequest) -> HttpResponse:
    visible = regions_viewable(request.user)
    items = (
        LegalInstrument.objects.filter(region__in=visible)
        .select_related("region", "employee")
        .order_by("region", "kind", "valid_from")
    )
    return render(
        request,
        "governance/instruments.html",
        {
            "section": "instruments",
            "instruments": items,
            "managed": set(regions_managed(request.user).values_list("code", flat=True)),
            "today": timezone.now().date(),
        },
    )


@require_http_methods(["GET", "POST"])
@legal_page
def instrument_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    managed = regions_managed(request.user)
    if not managed.exists():
        raise PermissionDenied("You manage no region, so you cannot record legal instruments.")
    instrument = None
    if pk is not None:
        instrument = get_object_or_404(LegalInstrument.objects.select_related("region", "employee"), pk=pk)
        if not can_manage_region(request.user, instrument.region):
            raise PermissionDenied(f"This instrument belongs to {instrument.region_id}, outside your regions.")
    if request.method == "POST":
        form = InstrumentForm(request.POST, regions=managed)
        if form.is_valid():
            data = form.cleaned_data
            try:
                saved = services.instrument_save(
                    kind=data["kind"],
                    title=data["title"],
                    region=data["region"],
                    entity=data["entity"],
                    site=data["site"],
                    employee=data["employee"],
                    valid_from=data["valid_from"],
                    valid_to=data["valid_to"],
                    document_ref=data["document_ref"],
                    instrument=instrument,
                    actor=Actor.for_user(request.user),
                )
            except DomainError as error:
                attach_errors(form, error)
            else:
                messages.success(request, f"Saved: {saved.get_kind_display()} for {saved.region_id}.")
                return redirect("legal:instruments")
    elif instrument is not None:
        form = InstrumentForm(
            regions=managed,
            initial={
                "kind": instrument.kind,
                "title": instrument.title,
                "region": instrument.region,
                "entity": instrument.entity,
                "site": instrument.site,
                "employee": instrument.employee.hr_id if instrument.employee else "",
                "valid_from": instrument.valid_from,
                "valid_to": instrument.valid_to,
                "document_ref": instrument.document_ref,
            },
        )
    else:
        form = InstrumentForm(regions=managed, initial={"valid_from": timezone.now().date()})
    return render(
        request, "governance/instrument_form.html", {"section": "instruments", "form": form, "instrument": instrument}
    )


# Catalogue ------------------------------------------------------------------------------


@require_GET
@legal_page
def catalogue(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "governance/catalogue.html",
        {
            "section": "catalogue",
            "notices": Notice.objects.order_by("-version"),
            "purposes": Purpose.objects.prefetch_related("categories").order_by("prohibited", "name"),
            "categories": DataCategory.objects.order_by("name"),
            "retention": RetentionPolicy.objects.select_related("category", "region", "purpose"),
            "exclusions": ContextExclusion.objects.order_by("kind", "pattern"),
        },
    )


@require_GET
@legal_page
def notice_detail(request: HttpRequest, version: int) -> HttpResponse:
    notice = Notice.objects.filter(version=version).first()
    if notice is None:
        raise Http404("No such notice version.")
    items = notice.items.select_related("purpose", "category").order_by("purpose__name", "category__name")
    previous = (
        Notice.objects.filter(state=ApprovalState.APPROVED, version__lt=version)
        .filter(~Q(pk=notice.pk))
        .order_by("-version")
        .first()
    )
    return render(
        request,
        "governance/notice_detail.html",
        {"section": "catalogue", "notice": notice, "items": items, "previous": previous},
    )


# Policy packs ----------------------------------------------------------------------------


def _pack_errors(filename: str, errors) -> list[dict]:
    return [{"line": error.line, "path": error.path, "message": error.message} for error in errors]


@require_http_methods(["GET", "POST"])
@legal_page
def packs(request: HttpRequest) -> HttpResponse:
    may_load = can_load_packs(request.user)
    export_form = PackExportForm(initial={"version": timezone.now().strftime("%Y.%m.%d")})
    outcome: dict = {}
    if request.method == "POST":
        form = PackImportForm(request.POST, request.FILES, may_load=may_load)
        if form.is_valid():
            outcome = _import(request, form)
    else:
        form = PackImportForm(may_load=may_load)
    return render(
        request,
        "governance/packs.html",
        {"section": "packs", "form": form, "export_form": export_form, "may_load": may_load, **outcome},
    )


def _import(request: HttpRequest, form: PackImportForm) -> dict:
    """Check (and, when asked and allowed, load) the uploaded pack; what to show."""
    upload = form.cleaned_data["pack"]
    filename = Path(upload.name).name[:100] or "pack.yaml"
    load = form.cleaned_data["load"] and form.may_load
    try:
        source = parse_pack(upload.read(), filename=filename)
        if load:
            result = pack_import(source=source, actor=Actor.for_user(request.user))
            return {"filename": filename, "loaded": result.summary_lines()}
        errors = check_pack(source)
    except PackInvalid as invalid:
        errors = invalid.errors
    except RecursionError:
        errors = [PackError(message="the file nests too deeply to be a policy pack")]
    if errors:
        return {"filename": filename, "errors": _pack_errors(filename, errors), "was_loading": load}
    data = source.data
    return {"filename": filename, "valid": f"Policy pack {data['name']} {data['version']} is valid."}


@require_GET
@legal_page
def pack_export(request: HttpRequest) -> HttpResponse:
    form = PackExportForm(request.GET)
    if not form.is_valid():
        return render(
            request,
            "governance/packs.html",
            {
                "section": "packs",
                "form": PackImportForm(may_load=can_load_packs(request.user)),
                "export_form": form,
                "may_load": can_load_packs(request.user),
            },
            status=400,
        )
    name, version = form.cleaned_data["name"], form.cleaned_data["version"]
    response = HttpResponse(
        export_pack(
            name=name, version=version, description=f"Exported from Consentry by {request.user.get_username()}."
        ),
        content_type="application/yaml; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{name}-{version}.yaml"'
    return response
