"""State changes of the policy. Each is atomic, audited, and bumps the policy revision."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from audit.actors import Actor
from audit.models import EventType
from audit.services import record
from consentry.errors import Conflict, DomainError, Forbidden
from consentry.outbox import PolicyChanged, RetiredRule, Topic, publish
from governance.models import (
    ApprovalState,
    ContextExclusion,
    DataCategory,
    ExclusionKind,
    ExclusionReason,
    JurisdictionRule,
    LegalInstrument,
    Notice,
    NoticeItem,
    PolicyRevision,
    PreconditionType,
    Purpose,
    Region,
    RegionKind,
    RetentionPolicy,
    RuleStatus,
)
from people.iso3166 import country_name, subdivision_name
from people.models import Employee


def _lock_policy() -> PolicyRevision:
    """Lock the policy revision row (creating it if a table reset removed it)."""
    PolicyRevision.objects.bulk_create([PolicyRevision(pk=1)], ignore_conflicts=True)
    return PolicyRevision.objects.select_for_update().get(pk=1)


def policy_changed() -> None:
    """Bump the revision every process compares to notice a policy change."""
    if not PolicyRevision.objects.filter(pk=1).update(revision=F("revision") + 1, changed_at=timezone.now()):
        PolicyRevision.objects.bulk_create([PolicyRevision(pk=1)], ignore_conflicts=True)
        PolicyRevision.objects.filter(pk=1).update(revision=F("revision") + 1, changed_at=timezone.now())


def _invalid(detail: str, **errors: Any) -> DomainError:
    return DomainError(detail, code="invalid", errors={key: str(value) for key, value in errors.items()})


# Regions, categories, purposes ------------------------------------------------


def region_save(*, code: str, name: str = "", kind: str = "", members: Iterable[str] = (), actor: Actor) -> Region:
    """Create or update a region. Countries and subdivisions must be ISO 3166 codes."""
    if not kind:
        kind = RegionKind.SUBDIVISION if "-" in code else RegionKind.COUNTRY
    if kind == RegionKind.COUNTRY:
        official = country_name(code)
    elif kind == RegionKind.SUBDIVISION:
        official = subdivision_name(code)
    elif kind == RegionKind.GROUP:
        official = name
        if not code.isupper() or not code.isalnum() or country_name(code):
            raise _invalid(f"Group code {code!r} must be upper-case letters and not a country code.", code=code)
    else:
        raise _invalid(f"{kind!r} is not a region kind.", kind=kind)
    if not official:
        raise _invalid(f"{code!r} is not a known ISO 3166 {kind} code.", code=code)
    member_codes = sorted(set(members))
    if member_codes and kind != RegionKind.GROUP:
        raise _invalid("Only groups have members.", members=member_codes)
    unknown = [member for member in member_codes if not country_name(member)]
    if unknown:
        raise _invalid(f"Unknown member country codes: {', '.join(unknown)}.", members=unknown)
    with transaction.atomic():
        region, created = Region.objects.get_or_create(code=code, defaults={"name": name or official, "kind": kind})
        before = sorted(region.members.values_list("code", flat=True))
        changed = created or region.name != (name or official) or region.kind != kind or before != member_codes
        if not changed:
            return region
        region.name, region.kind = name or official, kind
        region.save()
        for member in member_codes:
            if not Region.objects.filter(code=member).exists():
                region_save(code=member, kind=RegionKind.COUNTRY, actor=actor)
        # Primary keys stand for the rows; the stubs take only integer ones, and a region's key is its code.
        region.members.set(member_codes)  # type: ignore[arg-type]
        record(
            event_type=EventType.REGION_SAVED,
            actor=actor,
            object_type="region",
            object_id=code,
            region=code,
            payload={"name": region.name, "kind": kind, "members": member_codes, "created": created},
        )
        policy_changed()
    return region


def category_save(
    *, slug: str, name: str, description: str, sensitive: bool = False, biometric: bool = False, actor: Actor
) -> DataCategory:
    fields = {"name": name, "description": description, "sensitive": sensitive, "biometric": biometric}
    with transaction.atomic():
        category, created = DataCategory.objects.get_or_create(slug=slug, defaults=fields)
        if not created and all(getattr(category, key) == value for key, value in fields.items()):
            return category
        for key, value in fields.items():
            setattr(category, key, value)
        category.save()
        record(
            event_type=EventType.CATEGORY_SAVED,
            actor=actor,
            object_type="data_category",
            object_id=slug,
            payload={**fields, "created": created},
        )
        policy_changed()
    return category


def purpose_save(
    *,
    slug: str,
    name: str,
    description: str,
    categories: Iterable[str],
    consent_validity_days: int = 365,
    prohibited: bool = False,
    actor: Actor,
) -> Purpose:
    """Create or update a purpose. Prohibited purposes can never be consented to or used."""
    slugs = sorted(set(categories))
    known = set(DataCategory.objects.filter(slug__in=slugs).values_list("slug", flat=True))
    unknown = [slug_ for slug_ in slugs if slug_ not in known]
    if unknown:
        raise _invalid(f"Unknown data categories: {', '.join(unknown)}.", categories=unknown)
    if consent_validity_days < 1:
        raise _invalid("Consent validity must be at least one day.", consent_validity_days=consent_validity_days)
    fields = {
        "name": name,
        "description": description,
        "consent_validity_days": consent_validity_days,
        "prohibited": prohibited,
    }
    with transaction.atomic():
        purpose, created = Purpose.objects.get_or_create(slug=slug, defaults=fields)
        current = sorted(purpose.categories.values_list("slug", flat=True))
        if not created and current == slugs and all(getattr(purpose, k) == v for k, v in fields.items()):
            return purpose
        for key, value in fields.items():
            setattr(purpose, key, value)
        purpose.save()
        # Primary keys stand for the rows; the stubs take only integer ones, and a category's key is its slug.
        purpose.categories.set(slugs)  # type: ignore[arg-type]
        record(
            event_type=EventType.PURPOSE_SAVED,
            actor=actor,
            object_type="purpose",
            object_id=slug,
            payload={**fields, "categories": slugs, "created": created},
        )
        # Categories the purpose no longer covers (all of them once it is prohibited) stop being captured.
        lost = current if prohibited else sorted(set(current) - set(slugs))
        if lost and not created:
            publish(
                topic=Topic.POLICY_CHANGED,
                payload=PolicyChanged(
                    pairs=[f"{slug}/{category}" for category in lost], purpose_changed=slug, at=timezone.now()
                ),
            )
        policy_changed()
    return purpose


# Jurisdiction rules -------------------------------------------------------------


def _validate_rule_fields(
    *,
    status: str,
    preconditions: list[str],
    blocked_categories: list[str],
    max_retention_days: Mapping[str, Any],
    effective_from: datetime,
    effective_to: datetime | None,
) -> None:
    errors: dict[str, str] = {}
    if status not in RuleStatus.values:
        errors["status"] = f"{status!r} is not one of {', '.join(RuleStatus.values)}."
    bad = [item for item in preconditions if item not in PreconditionType.values]
    if bad:
        errors["preconditions"] = f"Unknown preconditions: {', '.join(map(str, bad))}."
    slugs = set(blocked_categories) | set(max_retention_days)
    known = set(DataCategory.objects.filter(slug__in=slugs).values_list("slug", flat=True))
    if set(blocked_categories) - known:
        errors["blocked_categories"] = f"Unknown categories: {', '.join(sorted(set(blocked_categories) - known))}."
    if set(max_retention_days) - known:
        errors["max_retention_days"] = f"Unknown categories: {', '.join(sorted(set(max_retention_days) - known))}."
    if any(not isinstance(days, int) or isinstance(days, bool) or days < 0 for days in max_retention_days.values()):
        message = "Retention caps must be whole numbers of days, zero or more."
        errors["max_retention_days"] = " ".join(filter(None, [errors.get("max_retention_days"), message]))
    if timezone.is_naive(effective_from) or (effective_to is not None and timezone.is_naive(effective_to)):
        errors["effective_from"] = "Effective dates need a time zone."
    elif effective_to is not None and effective_to <= effective_from:
        errors["effective_to"] = "The rule must end after it starts."
    if errors:
        raise DomainError("The rule is not valid.", code="invalid", errors=errors)


def rule_draft(
    *,
    region: Region,
    status: str,
    effective_from: datetime,
    effective_to: datetime | None = None,
    preconditions: Iterable[str] = (),
    blocked_categories: Iterable[str] = (),
    max_retention_days: Mapping[str, int] | None = None,
    notes: str = "",
    supersedes: JurisdictionRule | None = None,
    actor: Actor,
) -> JurisdictionRule:
    """Draft a rule for a region. It counts only once a second person approves it.

    Editing an approved rule is drafting its successor: pass it as ``supersedes``.
    """
    preconditions = sorted(set(preconditions))
    blocked = sorted(set(blocked_categories))
    caps = dict(sorted((max_retention_days or {}).items()))
    _validate_rule_fields(
        status=status,
        preconditions=preconditions,
        blocked_categories=blocked,
        max_retention_days=caps,
        effective_from=effective_from,
        effective_to=effective_to,
    )
    if supersedes is not None and (supersedes.state != ApprovalState.APPROVED or supersedes.region_id != region.code):
        raise Conflict("Only an approved rule of the same region can be superseded.", code="invalid_supersedes")
    with transaction.atomic():
        rule = JurisdictionRule.objects.create(
            region=region,
            status=status,
            preconditions=preconditions,
            blocked_categories=blocked,
            max_retention_days=caps,
            effective_from=effective_from,
            effective_to=effective_to,
            notes=notes,
            supersedes=supersedes,
            created_by_id=actor.user_id,
        )
        record(
            event_type=EventType.RULE_DRAFTED,
            actor=actor,
            object_type="jurisdiction_rule",
            object_id=rule.pk,
            region=region.code,
            payload=_rule_payload(rule),
        )
    return rule


def _rule_payload(rule: JurisdictionRule) -> dict[str, Any]:
    return {
        "region": rule.region_id,
        "status": rule.status,
        "preconditions": rule.preconditions,
        "blocked_categories": rule.blocked_categories,
        "max_retention_days": rule.max_retention_days,
        "effective_from": rule.effective_from,
        "effective_to": rule.effective_to,
        "supersedes": rule.supersedes_id,
    }


def _overlapping(rule: JurisdictionRule, *, excluding: set[int]) -> list[JurisdictionRule]:
    query = JurisdictionRule.objects.filter(region=rule.region_id, state=ApprovalState.APPROVED).exclude(
        pk__in=excluding
    )
    query = query.filter(Q(effective_to__isnull=True) | Q(effective_to__gt=rule.effective_from))
    if rule.effective_to is not None:
        query = query.filter(effective_from__lt=rule.effective_to)
    return list(query)


def rule_approve(*, rule: JurisdictionRule, actor: Actor, via: str = "") -> JurisdictionRule:
    """Approve a draft: four eyes, no overlap, and the superseded rule retired.

    A different person than the drafter must approve (``via`` names a reviewed
    channel such as a policy pack instead). If the draft supersedes a rule, that
    rule is retired from the draft's start: wholly when the draft starts no
    later than it, otherwise its period is closed at the draft's start.
    """
    with transaction.atomic():
        rule = JurisdictionRule.objects.select_for_update().get(pk=rule.pk)
        if rule.state != ApprovalState.DRAFT:
            raise Conflict("Only a draft can be approved.", code="not_a_draft")
        if not via and actor.user_id is None:
            raise Forbidden("Approval needs a person or a reviewed policy pack.", code="approver_required")
        if actor.user_id is not None and actor.user_id == rule.created_by_id:
            raise Forbidden("A rule must be approved by someone other than its author.", code="four_eyes")
        retired: list[JurisdictionRule] = []
        # How the retired rule stood before: the revocation feed compares decisions under both.
        retired_before: list[RetiredRule] = []
        if rule.supersedes_id:
            old = JurisdictionRule.objects.select_for_update().get(pk=rule.supersedes_id)
            if old.state != ApprovalState.APPROVED:
                raise Conflict("The rule this draft replaces is no longer in force.", code="stale_draft")
            retired_before.append(RetiredRule(id=old.pk, effective_to=old.effective_to))
            if rule.effective_from <= old.effective_from:
                old.state = ApprovalState.SUPERSEDED
                old.save(update_fields=["state"])
                retired.append(old)
            elif old.effective_to is None or old.effective_to > rule.effective_from:
                # Close the old rule where the successor starts; never lengthen it.
                old.effective_to = rule.effective_from
                old.save(update_fields=["effective_to"])
                retired.append(old)
        clash = _overlapping(rule, excluding={rule.pk})
        if clash:
            raise Conflict(
                f"The rule overlaps approved rule #{clash[0].pk} for {rule.region_id}; supersede it instead.",
                code="rule_overlap",
            )
        rule.state = ApprovalState.APPROVED
        rule.approved_by_id = actor.user_id
        rule.approved_at = timezone.now()
        rule.approved_via = via
        rule.save(update_fields=["state", "approved_by", "approved_at", "approved_via"])
        record(
            event_type=EventType.RULE_APPROVED,
            actor=actor,
            object_type="jurisdiction_rule",
            object_id=rule.pk,
            region=rule.region_id,
            payload={**_rule_payload(rule), "via": via},
        )
        for old in retired:
            record(
                event_type=EventType.RULE_SUPERSEDED,
                actor=actor,
                object_type="jurisdiction_rule",
                object_id=old.pk,
                region=old.region_id,
                payload={"by": rule.pk, "state": old.state, "effective_to": old.effective_to},
            )
        policy_changed()
        # After commit the feed tells grant holders whose allow this rule turns into a deny.
        publish(
            topic=Topic.POLICY_CHANGED,
            payload=PolicyChanged(rule=rule.pk, region=rule.region_id, retired=retired_before),
        )
    return rule


def policy_boundaries_announce(*, now: datetime | None = None) -> int:
    """Announce what policy approved earlier has just brought into force; returns how many messages.

    Approving a rule or a material notice tells the revocation feed at once
    what it takes away, but one approved to start (or, for a rule, to end)
    later changes nothing then: the snapshot keeps periods, so decisions
    follow it from that moment, yet nobody told the grant holders. The beat
    calls this every few seconds. For each moment that passed since its
    watermark it publishes a ``policy_changed`` message: per region for rule
    periods (the feed compares each affected employee's decisions just
    before and at that moment), per notice for the pairs a material notice
    asks to re-consent. Only moments after the approval count (earlier ones
    were the approval's to tell), and a rule period's end only when no
    approved rule for the region starts then (that start is announced
    instead). The watermark moves in the same transaction as the messages,
    so each moment is announced exactly once; the first run only sets it.
    """
    now = now or timezone.now()
    with transaction.atomic():
        revision = _lock_policy()
        since = revision.boundaries_announced_until
        if since is not None and since >= now:
            return 0  # the clock went back: never announce a moment twice
        revision.boundaries_announced_until = now
        revision.save(update_fields=["boundaries_announced_until"])
        if since is None:
            return 0
        messages = [PolicyChanged(boundary=region, at=moment) for region, moment in _rule_boundaries(since, now)]
        notices = Notice.objects.filter(state=ApprovalState.APPROVED, published_at__gt=since, published_at__lte=now)
        for notice in notices.filter(published_at__gt=F("approved_at")).order_by("version"):
            pairs = sorted(f"{i.purpose_id}/{i.category_id}" for i in notice.items.filter(requires_reconsent=True))
            if pairs:
                messages.append(PolicyChanged(notice=notice.version, pairs=pairs, at=notice.published_at))
        for payload in messages:
            publish(topic=Topic.POLICY_CHANGED, payload=payload)
    return len(messages)


def _rule_boundaries(since: datetime, now: datetime) -> list[tuple[str, datetime]]:
    """(region, moment) where an approved rule period began or ended in (since, now], after its approval."""
    rules = JurisdictionRule.objects.filter(state=ApprovalState.APPROVED)
    begun = rules.filter(effective_from__gt=since, effective_from__lte=now)
    # A start the approval already covered still makes the region's old rule end unannounced.
    starts = set(begun.values_list("region_id", "effective_from"))
    after_approval = set(begun.filter(effective_from__gt=F("approved_at")).values_list("region_id", "effective_from"))
    ends = rules.filter(effective_to__gt=since, effective_to__lte=now).filter(effective_to__gt=F("approved_at"))
    # effective_to__gt already left out open-ended rules; the check only tells the type checker so.
    ended = {(region, end) for region, end in ends.values_list("region_id", "effective_to") if end is not None} - starts
    return sorted(after_approval | ended)


def rule_discard_draft(*, rule: JurisdictionRule, actor: Actor) -> None:
    with transaction.atomic():
        rule = JurisdictionRule.objects.select_for_update().get(pk=rule.pk)
        if rule.state != ApprovalState.DRAFT:
            raise Conflict("Only a draft can be discarded.", code="not_a_draft")
        record(
            event_type=EventType.RULE_DRAFT_DISCARDED,
            actor=actor,
            object_type="jurisdiction_rule",
            object_id=rule.pk,
            region=rule.region_id,
            payload=_rule_payload(rule),
        )
        rule.delete()


def _check_draft_author(obj: JurisdictionRule | Notice, actor: Actor, noun: str) -> None:
    """Only a draft's author changes it, so the person who approves it shaped none of it."""
    if obj.created_by_id is not None and actor.user_id != obj.created_by_id:
        raise Forbidden(
            f"Only the author of this {noun} draft may change it; draft your own instead.", code="not_the_author"
        )


def rule_draft_update(
    *,
    rule: JurisdictionRule,
    status: str,
    effective_from: datetime,
    effective_to: datetime | None = None,
    preconditions: Iterable[str] = (),
    blocked_categories: Iterable[str] = (),
    max_retention_days: Mapping[str, int] | None = None,
    notes: str = "",
    actor: Actor,
) -> JurisdictionRule:
    """Change a draft rule before anyone approves it; approved rules never change.

    The region and the rule it supersedes stay as drafted. Only the author may
    edit (a draft without one, e.g. from a policy pack, becomes the editor's),
    which keeps four eyes meaningful: the approver changed none of it.
    """
    preconditions = sorted(set(preconditions))
    blocked = sorted(set(blocked_categories))
    caps = dict(sorted((max_retention_days or {}).items()))
    _validate_rule_fields(
        status=status,
        preconditions=preconditions,
        blocked_categories=blocked,
        max_retention_days=caps,
        effective_from=effective_from,
        effective_to=effective_to,
    )
    with transaction.atomic():
        rule = JurisdictionRule.objects.select_for_update().get(pk=rule.pk)
        if rule.state != ApprovalState.DRAFT:
            raise Conflict("An approved rule is immutable; draft a successor that supersedes it.", code="immutable")
        _check_draft_author(rule, actor, "rule")
        rule.status, rule.preconditions, rule.blocked_categories = status, preconditions, blocked
        rule.max_retention_days, rule.notes = caps, notes
        rule.effective_from, rule.effective_to = effective_from, effective_to
        if rule.created_by_id is None:
            rule.created_by_id = actor.user_id
        rule.save()
        record(
            event_type=EventType.RULE_DRAFT_UPDATED,
            actor=actor,
            object_type="jurisdiction_rule",
            object_id=rule.pk,
            region=rule.region_id,
            payload=_rule_payload(rule),
        )
    return rule


# Notices ---------------------------------------------------------------------------


def _validate_notice(
    *, title: str, summary: str, no_evaluation_statement: str, items: Iterable[tuple[str, str, str]]
) -> list[tuple[str, str, str]]:
    pairs = list(items)
    errors: dict[str, str] = {}
    for field, value in (("title", title), ("summary", summary), ("no_evaluation_statement", no_evaluation_statement)):
        if not value.strip():
            errors[field] = "This field is required."
    if not pairs:
        errors["items"] = "A notice must declare at least one purpose × category pair."
    purposes = {p.slug: p for p in Purpose.objects.prefetch_related("categories")}
    for index, (purpose, category, _text) in enumerate(pairs):
        if purpose not in purposes:
            errors[f"items[{index}].purpose"] = f"Unknown purpose {purpose!r}."
        elif purposes[purpose].prohibited:
            errors[f"items[{index}].purpose"] = f"{purpose!r} is prohibited and cannot be in a notice."
        elif category not in {c.slug for c in purposes[purpose].categories.all()}:
            errors[f"items[{index}].category"] = f"{category!r} is not a category of {purpose!r}."
    if len({(p, c) for p, c, _ in pairs}) != len(pairs):
        errors.setdefault("items", "Each purpose × category pair may appear once.")
    if errors:
        raise DomainError("The notice is not valid.", code="invalid", errors=errors)
    return pairs


def notice_draft(
    *,
    title: str,
    summary: str,
    body: str,
    retention_statement: str,
    access_statement: str,
    no_evaluation_statement: str,
    items: Iterable[tuple[str, str, str]],
    material: bool,
    actor: Actor,
) -> Notice:
    """Draft the next notice version. ``items`` are (purpose, category, plain description)."""
    pairs = _validate_notice(title=title, summary=summary, no_evaluation_statement=no_evaluation_statement, items=items)
    with transaction.atomic():
        _lock_policy()  # serialises version numbering: aggregates cannot be locked
        version = (Notice.objects.aggregate(top=Max("version"))["top"] or 0) + 1
        notice = Notice.objects.create(
            version=version,
            title=title,
            summary=summary,
            body=body,
            retention_statement=retention_statement,
            access_statement=access_statement,
            no_evaluation_statement=no_evaluation_statement,
            material=material,
            created_by_id=actor.user_id,
        )
        NoticeItem.objects.bulk_create(
            NoticeItem(notice=notice, purpose_id=p, category_id=c, description=text) for p, c, text in pairs
        )
        record(
            event_type=EventType.NOTICE_DRAFTED,
            actor=actor,
            object_type="notice",
            object_id=version,
            payload={"title": title, "material": material, "pairs": sorted(f"{p}/{c}" for p, c, _ in pairs)},
        )
    return notice


def notice_approve(*, notice: Notice, actor: Actor, published_at: datetime | None = None, via: str = "") -> Notice:
    """Approve and publish a notice version (four eyes).

    For a material version, the pairs that are new or whose description
    changed since the previous approved version are marked as needing
    re-consent; a non-material version carries every consent over.
    """
    with transaction.atomic():
        notice = Notice.objects.select_for_update(no_key=True).get(pk=notice.pk)
        if notice.state != ApprovalState.DRAFT:
            raise Conflict("Only a draft notice can be approved.", code="not_a_draft")
        if not via and actor.user_id is None:
            raise Forbidden("Approval needs a person or a reviewed policy pack.", code="approver_required")
        if actor.user_id is not None and actor.user_id == notice.created_by_id:
            raise Forbidden("A notice must be approved by someone other than its author.", code="four_eyes")
        if Notice.objects.filter(state=ApprovalState.APPROVED, version__gt=notice.version).exists():
            raise Conflict("A newer notice version is already approved; draft a new one.", code="stale_draft")
        previous = (
            Notice.objects.filter(state=ApprovalState.APPROVED, version__lt=notice.version).order_by("-version").first()
        )
        before = {(i.purpose_id, i.category_id): i.description for i in previous.items.all()} if previous else {}
        changed = []
        for item in notice.items.all():
            pair = (item.purpose_id, item.category_id)
            if notice.material and before.get(pair) != item.description:
                item.requires_reconsent = True
                item.save(update_fields=["requires_reconsent"])
                changed.append(f"{pair[0]}/{pair[1]}")
        notice.state = ApprovalState.APPROVED
        notice.approved_by_id = actor.user_id
        notice.approved_at = timezone.now()
        notice.approved_via = via
        notice.published_at = published_at or notice.approved_at
        notice.save(update_fields=["state", "approved_by", "approved_at", "approved_via", "published_at"])
        record(
            event_type=EventType.NOTICE_APPROVED,
            actor=actor,
            object_type="notice",
            object_id=notice.version,
            payload={"material": notice.material, "reconsent_pairs": changed, "published_at": notice.published_at},
        )
        if changed and notice.published_at <= notice.approved_at:
            # Consent given under the previous wording no longer covers these pairs. A notice
            # published later is announced then (policy_boundaries_announce).
            publish(
                topic=Topic.POLICY_CHANGED,
                payload=PolicyChanged(notice=notice.version, pairs=changed, at=notice.published_at),
            )
        policy_changed()
    return notice


def notice_draft_update(
    *,
    notice: Notice,
    title: str,
    summary: str,
    body: str,
    retention_statement: str,
    access_statement: str,
    no_evaluation_statement: str,
    items: Iterable[tuple[str, str, str]],
    material: bool,
    actor: Actor,
) -> Notice:
    """Rewrite a draft notice before approval; the version number stays. Only its author may."""
    pairs = _validate_notice(title=title, summary=summary, no_evaluation_statement=no_evaluation_statement, items=items)
    with transaction.atomic():
        notice = Notice.objects.select_for_update(no_key=True).get(pk=notice.pk)
        if notice.state != ApprovalState.DRAFT:
            raise Conflict("A published notice is immutable; draft the next version instead.", code="immutable")
        _check_draft_author(notice, actor, "notice")
        notice.title, notice.summary, notice.body = title, summary, body
        notice.retention_statement, notice.access_statement = retention_statement, access_statement
        notice.no_evaluation_statement, notice.material = no_evaluation_statement, material
        if notice.created_by_id is None:
            notice.created_by_id = actor.user_id
        notice.save()
        notice.items.all().delete()
        NoticeItem.objects.bulk_create(
            NoticeItem(notice=notice, purpose_id=p, category_id=c, description=text) for p, c, text in pairs
        )
        record(
            event_type=EventType.NOTICE_DRAFT_UPDATED,
            actor=actor,
            object_type="notice",
            object_id=notice.version,
            payload={"title": title, "material": material, "pairs": sorted(f"{p}/{c}" for p, c, _ in pairs)},
        )
    return notice


def notice_discard_draft(*, notice: Notice, actor: Actor) -> None:
    """Throw away an unapproved notice version (its number is not reused)."""
    with transaction.atomic():
        notice = Notice.objects.select_for_update(no_key=True).get(pk=notice.pk)
        if notice.state != ApprovalState.DRAFT:
            raise Conflict("Only a draft notice can be discarded.", code="not_a_draft")
        record(
            event_type=EventType.NOTICE_DRAFT_DISCARDED,
            actor=actor,
            object_type="notice",
            object_id=notice.version,
            payload={"title": notice.title},
        )
        notice.delete()


# Instruments, retention, exclusions --------------------------------------------------


def instrument_save(
    *,
    kind: str,
    title: str,
    region: Region,
    valid_from: date,
    document_ref: str,
    valid_to: date | None = None,
    entity: str = "",
    site: str = "",
    employee: Employee | None = None,
    instrument: LegalInstrument | None = None,
    actor: Actor,
) -> LegalInstrument:
    """Record (or correct) a legal instrument that meets a precondition."""
    errors = {}
    if kind not in PreconditionType.values:
        errors["kind"] = f"{kind!r} is not a known instrument kind."
    if valid_to is not None and valid_to < valid_from:
        errors["valid_to"] = "An instrument cannot expire before it starts."
    if not document_ref.strip():
        errors["document_ref"] = "Say where the signed document is kept."
    if errors:
        raise DomainError("The legal instrument is not valid.", code="invalid", errors=errors)
    fields = {
        "kind": kind,
        "title": title,
        "region": region,
        "valid_from": valid_from,
        "valid_to": valid_to,
        "document_ref": document_ref,
        "entity": entity,
        "site": site,
        "employee": employee,
    }
    with transaction.atomic():
        if instrument is None:
            instrument = LegalInstrument.objects.create(**fields, created_by_id=actor.user_id)
        elif all(getattr(instrument, key) == value for key, value in fields.items()):
            return instrument
        else:
            for key, value in fields.items():
                setattr(instrument, key, value)
            instrument.save()
        record(
            event_type=EventType.INSTRUMENT_SAVED,
            actor=actor,
            subject=employee.hr_id if employee else "",
            object_type="legal_instrument",
            object_id=instrument.pk,
            region=region.code,
            payload={**{k: v for k, v in fields.items() if k not in ("region", "employee")}, "region": region.code},
        )
        policy_changed()
    return instrument


def retention_save(
    *,
    category: DataCategory,
    raw_retention_days: int,
    delete_on_withdrawal_days: int,
    delete_on_termination_days: int,
    region: Region | None = None,
    purpose: Purpose | None = None,
    actor: Actor,
) -> RetentionPolicy:
    """Set the retention for a category (optionally narrowed to a region or purpose)."""
    values = {
        "raw_retention_days": raw_retention_days,
        "delete_on_withdrawal_days": delete_on_withdrawal_days,
        "delete_on_termination_days": delete_on_termination_days,
    }
    bad = {key: "Must be a whole number of days, zero or more." for key, v in values.items() if v < 0}
    if bad:
        raise DomainError("Retention periods cannot be negative.", code="invalid", errors=bad)
    with transaction.atomic():
        policy, created = RetentionPolicy.objects.get_or_create(
            category=category, region=region, purpose=purpose, defaults=values
        )
        if not created and all(getattr(policy, k) == v for k, v in values.items()):
            return policy
        for key, value in values.items():
            setattr(policy, key, value)
        policy.save()
        record(
            event_type=EventType.RETENTION_SAVED,
            actor=actor,
            object_type="retention_policy",
            object_id=policy.pk,
            region=region.code if region else "",
            payload={
                **values,
                "category": category.slug,
                "region": region.code if region else None,
                "purpose": purpose.slug if purpose else None,
            },
        )
        policy_changed()
    return policy


def exclusion_save(
    *, kind: str, pattern: str, label: str, reason: str = "other", categories: Iterable[str] = (), actor: Actor
) -> ContextExclusion:
    """Never capture in this app, domain or context (for the listed categories, or all)."""
    slugs = sorted(set(categories))
    errors = {}
    if kind not in ExclusionKind.values:
        errors["kind"] = f"{kind!r} is not one of {', '.join(ExclusionKind.values)}."
    if reason not in ExclusionReason.values:
        errors["reason"] = f"{reason!r} is not one of {', '.join(ExclusionReason.values)}."
    if not pattern.strip():
        errors["pattern"] = "This field is required."
    unknown = set(slugs) - set(DataCategory.objects.filter(slug__in=slugs).values_list("slug", flat=True))
    if unknown:
        errors["categories"] = f"Unknown categories: {', '.join(sorted(unknown))}."
    if errors:
        raise DomainError("The exclusion is not valid.", code="invalid", errors=errors)
    fields = {"label": label, "reason": reason, "categories": slugs}
    with transaction.atomic():
        exclusion, created = ContextExclusion.objects.get_or_create(kind=kind, pattern=pattern, defaults=fields)
        if not created and all(getattr(exclusion, k) == v for k, v in fields.items()):
            return exclusion
        before = None if created else list(exclusion.categories)
        for key, value in fields.items():
            setattr(exclusion, key, value)
        exclusion.save()
        record(
            event_type=EventType.EXCLUSION_SAVED,
            actor=actor,
            object_type="context_exclusion",
            object_id=exclusion.pk,
            payload={"kind": kind, "pattern": pattern, **fields},
        )
        pairs = _newly_excluded_pairs(before, slugs)
        if pairs:
            # A grant says nothing of its context: holders of the categories drop their grants and
            # ask again, and the next decision sees the context they are in.
            publish(
                topic=Topic.POLICY_CHANGED,
                payload=PolicyChanged(pairs=pairs, exclusion=f"{kind}:{pattern}", at=timezone.now()),
            )
        policy_changed()
    return exclusion


def _newly_excluded_pairs(before: list[str] | None, after: list[str]) -> list[str]:
    """The "purpose/category" pairs an exclusion now covers and did not before (None: it did not exist).

    An empty category list covers every category. Prohibited purposes have no grants to take back.
    """
    every = set(DataCategory.objects.values_list("slug", flat=True))
    gained = (set(after) or every) - (set() if before is None else set(before) or every)
    links = Purpose.categories.through.objects.filter(datacategory_id__in=gained, purpose__prohibited=False)
    return sorted(f"{purpose}/{category}" for purpose, category in links.values_list("purpose_id", "datacategory_id"))


def exclusion_remove(*, exclusion: ContextExclusion, actor: Actor) -> None:
    with transaction.atomic():
        record(
            event_type=EventType.EXCLUSION_REMOVED,
            actor=actor,
            object_type="context_exclusion",
            object_id=exclusion.pk,
            payload={"kind": exclusion.kind, "pattern": exclusion.pattern},
        )
        exclusion.delete()
        policy_changed()
