"""The decision engine: frozen facts in, a decision out. No ORM, no clock, no I/O.

Everything the engine needs arrives as arguments: the compiled ``Policy``
(``decisions.snapshot`` builds it), the ``EmployeeFacts`` read for this
request, the request itself and the moment ``at``. The same inputs always give
the same answer, which is what lets ``simulate`` replay a decision and the
property tests explore millions of them.

Deny is the default: a category is allowed only when no reason applies, and
every check that cannot be made (no rule, no notice, no retention policy, an
unknown purpose) is itself a reason. Reasons that come from missing
configuration carry ``missing_configuration=True``, so an operator can tell
"the law forbids it" from "nobody configured it".

Capture decision, per requested category, every applicable reason in this order:

1. ``unknown_employee``: the employee is not known (nothing else is checked).
2. ``employee_inactive``: on leave or terminated.
3. ``jurisdiction_unknown``: no approved rule in force for the work location's
   region chain (subdivision → country → groups; the most specific rule wins).
4. ``jurisdiction_blocked``: the rule in force blocks capture.
5. ``precondition_missing``: a precondition of that rule is not met; the reason
   names each one. How each kind is met:
   - ``notice_acknowledgement``: the employee acknowledged the notice in force.
   - ``notice_acknowledgement_once``: the employee acknowledged any notice version.
   - ``notice_at_collection``: the employee acknowledged a notice version that
     already declared this purpose × category pair in its current wording, so
     they were told about this collection before it happens.
   - ``biometric_release``: only for biometric categories; a release instrument
     scoped to this employee, in their region chain, valid at ``at``.
   - any other kind: a legal instrument of that kind whose scope (region chain,
     entity, site, employee) covers the employee, valid at ``at``.
6. ``category_blocked_in_jurisdiction``: the rule lists the category as blocked.
7. ``purpose_unknown``: the purpose is not configured (consent checks are skipped).
8. ``purpose_prohibited``: the purpose can never be used.
9. ``category_not_in_purpose``: the purpose does not cover the category.
10. ``no_consent`` / ``consent_withdrawn`` / ``consent_expired`` /
    ``reconsent_required``: at most one, from where the pair stands. Re-consent
    is required when the consent was given under an older notice version than
    the latest approved version that marked the pair ``requires_reconsent``;
    a pair the notice in force no longer declares counts as no consent.
11. ``paused_by_employee``: a pause is running at ``at``.
12. ``excluded_context``: the app, web domain or a context flag (e.g.
    ``private_browsing``) matches an exclusion for the category.

Use decision, per record, every applicable reason in this order:

1. ``no_capture_grant``: the grant id is unknown (nothing else is checked).
2. ``grant_mismatch``: category, purpose, subject or capture time outside the grant.
3. ``consent_withdrawn``: the pair stands withdrawn now, or was withdrawn at or
   after the capture time or the grant's issue time (a withdrawal stops all
   further use of data captured before it, and of anything captured under a
   grant issued before it); ``no_consent`` when no consent record exists.
4. ``retention_expired``: older than the strictest limit of the retention
   policies and rule caps that apply where it was captured and where the
   employee works now (no applicable limit at all is missing configuration).
5. ``erasure_requested``: the employee asked for erasure after the capture.
6. ``employee_inactive``: terminated, and the termination deletion window passed.
7. ``purpose_unknown`` / ``purpose_prohibited``.
8. ``data_key_destroyed``: the data key for the employee × category × day is gone.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple

# The models' own vocabularies: plain enums, so the engine still imports no Django.
from consent.vocabulary import ConsentEventKind
from governance.vocabulary import ExclusionKind, ExclusionReason, PreconditionType, RuleStatus
from people.vocabulary import EmployeeStatus

EMPTY: Mapping[Any, Any] = MappingProxyType({})


def _empty() -> Mapping[Any, Any]:
    return EMPTY


class Code(StrEnum):
    """Machine-readable reason codes (SPEC.md, "Decisions: the semantics")."""

    UNKNOWN_EMPLOYEE = "unknown_employee"
    EMPLOYEE_INACTIVE = "employee_inactive"
    JURISDICTION_UNKNOWN = "jurisdiction_unknown"
    JURISDICTION_BLOCKED = "jurisdiction_blocked"
    PRECONDITION_MISSING = "precondition_missing"
    CATEGORY_BLOCKED = "category_blocked_in_jurisdiction"
    PURPOSE_UNKNOWN = "purpose_unknown"
    PURPOSE_PROHIBITED = "purpose_prohibited"
    CATEGORY_NOT_IN_PURPOSE = "category_not_in_purpose"
    NO_CONSENT = "no_consent"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    CONSENT_EXPIRED = "consent_expired"
    RECONSENT_REQUIRED = "reconsent_required"
    PAUSED = "paused_by_employee"
    EXCLUDED_CONTEXT = "excluded_context"
    # Use decision.
    NO_CAPTURE_GRANT = "no_capture_grant"
    GRANT_MISMATCH = "grant_mismatch"
    RETENTION_EXPIRED = "retention_expired"
    ERASURE_REQUESTED = "erasure_requested"
    DATA_KEY_DESTROYED = "data_key_destroyed"
    INVALID_RECORD = "invalid_record"


@dataclass(frozen=True, slots=True)
class Reason:
    """Why something is denied: a stable code, words for humans, and whether config is missing."""

    code: str
    detail: str
    _: KW_ONLY
    missing_configuration: bool = False
    # For precondition_missing: which preconditions are not met.
    preconditions: tuple[str, ...] = ()


# Policy (compiled once per policy revision) -------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
    """An approved jurisdiction rule with its period. Identity equality: used as a memo key."""

    id: int
    region: str
    status: str
    preconditions: tuple[str, ...]
    blocked_categories: frozenset[str]
    max_retention_days: Mapping[str, int]
    effective_from: datetime
    effective_to: datetime | None

    def in_force(self, at: datetime) -> bool:
        return self.effective_from <= at and (self.effective_to is None or at < self.effective_to)


@dataclass(frozen=True, slots=True)
class Category:
    slug: str
    biometric: bool = False
    sensitive: bool = False


@dataclass(frozen=True, slots=True)
class Purpose:
    slug: str
    categories: frozenset[str]
    prohibited: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Notice:
    """An approved notice version, with what re-consent and notice-at-collection need."""

    version: int
    published_at: datetime
    pairs: frozenset[tuple[str, str]]
    # Pair → the latest version up to this one that marked it requires_reconsent.
    reconsent_from: Mapping[tuple[str, str], int] = field(default_factory=_empty)
    # Pair → the first version (up to this one) with the pair's current wording.
    declared_since: Mapping[tuple[str, str], int] = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class Instrument:
    """Precondition evidence. ``employee`` is an HR id when scoped to one person."""

    kind: str
    region: str
    valid_from: date
    valid_to: date | None = None
    entity: str = ""
    site: str = ""
    employee: str = ""

    def covers(self, employee: EmployeeFacts, chain: tuple[str, ...], day: date) -> bool:
        return (
            self.region in chain
            and self.valid_from <= day
            and (self.valid_to is None or day <= self.valid_to)
            and (not self.entity or self.entity == employee.entity)
            and (not self.site or self.site == employee.site)
            and (not self.employee or self.employee == employee.hr_id)
        )


@dataclass(frozen=True, slots=True)
class Exclusion:
    """Never capture here. ``pattern`` is a compiled, case-insensitive glob."""

    kind: str  # an ExclusionKind
    pattern: re.Pattern[str]
    label: str
    reason: str = ExclusionReason.OTHER
    # Empty: every category.
    categories: frozenset[str] = frozenset()

    def applies_to(self, category: str) -> bool:
        return not self.categories or category in self.categories


@dataclass(frozen=True, slots=True)
class Retention:
    category: str
    raw_retention_days: int
    delete_on_termination_days: int
    region: str = ""
    purpose: str = ""


@dataclass(frozen=True, slots=True)
class Policy:
    """The compiled, immutable policy. ``version`` is a hash of its content."""

    version: str
    rules: Mapping[str, tuple[Rule, ...]] = field(default_factory=_empty)
    # Country code → the groups (EU, EEA, …) it belongs to, sorted.
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)
    categories: Mapping[str, Category] = field(default_factory=_empty)
    purposes: Mapping[str, Purpose] = field(default_factory=_empty)
    # Approved notices, by version ascending.
    notices: tuple[Notice, ...] = ()
    exclusions: tuple[Exclusion, ...] = ()
    # Category → the retention policies for it.
    retention: Mapping[str, tuple[Retention, ...]] = field(default_factory=_empty)
    # (kind, employee HR id or "") → instruments.
    instruments: Mapping[tuple[str, str], tuple[Instrument, ...]] = field(default_factory=_empty)
    # Deterministic memo of derived values (chains, retention limits): the
    # policy never changes, so neither do they. Not part of equality.
    _memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def chain(self, country: str, subdivision: str = "") -> tuple[str, ...]:
        """Region codes to try, most specific first: subdivision → country → groups."""
        key = ("chain", country, subdivision)
        found = self._memo.get(key)
        if found is None:
            found = tuple(code for code in (subdivision, country) if code) + self.groups.get(country, ())
            self._memo[key] = found
        return found

    def rule_at(self, chain: tuple[str, ...], at: datetime) -> Rule | None:
        """The rule in force at ``at`` for the first region of the chain that has one."""
        for code in chain:
            for rule in self.rules.get(code, ()):
                if rule.in_force(at):
                    return rule
        return None

    def notice_at(self, at: datetime) -> Notice | None:
        """The latest approved notice already published at ``at``."""
        for notice in reversed(self.notices):
            if notice.published_at <= at:
                return notice
        return None

    def retention_limits(
        self, *, chains: tuple[tuple[str, ...], ...], rules: tuple[Rule | None, ...], purpose: str, category: str
    ) -> tuple[int | None, int]:
        """(raw retention days or None when nothing applies, termination window days): strictest wins."""
        key = ("retention", chains, rules, purpose, category)
        found = self._memo.get(key)
        if found is None:
            regions = {code for chain in chains for code in chain}
            applicable = [
                policy
                for policy in self.retention.get(category, ())
                if (not policy.region or policy.region in regions) and (not policy.purpose or policy.purpose == purpose)
            ]
            limits = [policy.raw_retention_days for policy in applicable]
            limits += [
                rule.max_retention_days[category] for rule in rules if rule and category in rule.max_retention_days
            ]
            windows = [policy.delete_on_termination_days for policy in applicable]
            found = (min(limits) if limits else None, min(windows) if windows else 0)
            self._memo[key] = found
        return found


# Facts about one employee, read per request -------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsentFacts:
    """Where one purpose × category pair stands (a ConsentState row)."""

    state: str
    notice_version: int
    since: datetime
    expires_at: datetime | None = None
    # The latest withdrawal, kept across later grants.
    withdrawn_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EmployeeFacts:
    hr_id: str
    country: str
    subdivision: str = ""
    entity: str = ""
    site: str = ""
    status: str = EmployeeStatus.ACTIVE
    terminated_at: datetime | None = None
    # (purpose, category) → consent facts.
    consents: Mapping[tuple[str, str], ConsentFacts] = field(default_factory=_empty)
    # The employee's consent version (their latest ConsentEvent.version).
    consent_version: int = 0
    # (notice version, acknowledged at).
    acknowledgements: tuple[tuple[int, datetime], ...] = ()
    # (from, until) of each pause, ended early pauses cut at their resume time.
    pauses: tuple[tuple[datetime, datetime], ...] = ()
    # The latest erasure request (decisions.rights); destroyed data keys come from the data-key store.
    erasure_requested_at: datetime | None = None
    destroyed_keys: frozenset[tuple[str, date]] = frozenset()


@dataclass(frozen=True, slots=True)
class Context:
    """Where the capture would happen. Absent fields match no exclusion of their kind."""

    app: str = ""
    domain: str = ""
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CaptureRequest:
    purpose: str
    categories: tuple[str, ...]
    context: Context = Context()


@dataclass(frozen=True, slots=True)
class CategoryDecision:
    category: str
    reasons: tuple[Reason, ...]

    @property
    def allowed(self) -> bool:
        return not self.reasons


@dataclass(frozen=True, slots=True)
class CaptureDecision:
    at: datetime
    policy_version: str
    consent_version: int
    categories: tuple[CategoryDecision, ...]

    @property
    def allowed_categories(self) -> tuple[str, ...]:
        return tuple(result.category for result in self.categories if result.allowed)

    @property
    def reason_codes(self) -> frozenset[str]:
        return frozenset(reason.code for result in self.categories for reason in result.reasons)


# Capture ---------------------------------------------------------------------------------


def _acknowledged(employee: EmployeeFacts, at: datetime, *, at_least: int = 0, exactly: int | None = None) -> bool:
    for version, when in employee.acknowledgements:
        if when <= at and version >= at_least and (exactly is None or version == exactly):
            return True
    return False


def _precondition_met(
    kind: str,
    *,
    policy: Policy,
    employee: EmployeeFacts,
    chain: tuple[str, ...],
    notice: Notice | None,
    purpose: str,
    category: str,
    at: datetime,
) -> bool:
    if kind == PreconditionType.NOTICE_ACKNOWLEDGEMENT:
        return notice is not None and _acknowledged(employee, at, exactly=notice.version)
    if kind == PreconditionType.NOTICE_ACKNOWLEDGEMENT_ONCE:
        return _acknowledged(employee, at)
    if kind == PreconditionType.NOTICE_AT_COLLECTION:
        pair = (purpose, category)
        if notice is None or pair not in notice.pairs:
            return False
        return _acknowledged(employee, at, at_least=notice.declared_since.get(pair, notice.version))
    # Instruments are valid for calendar days, counted in UTC.
    day = at.astimezone(UTC).date()
    if kind == PreconditionType.BIOMETRIC_RELEASE:
        known = policy.categories.get(category)
        if known is not None and not known.biometric:
            return True
        scoped = policy.instruments.get((kind, employee.hr_id), ())
        return any(item.covers(employee, chain, day) for item in scoped)
    candidates = policy.instruments.get((kind, ""), ()) + policy.instruments.get((kind, employee.hr_id), ())
    return any(item.covers(employee, chain, day) for item in candidates)


def _consent_reason(
    employee: EmployeeFacts, notice: Notice | None, purpose: str, category: str, at: datetime
) -> Reason | None:
    pair = (purpose, category)
    consent = employee.consents.get(pair)
    if consent is None or consent.since > at:
        return Reason(Code.NO_CONSENT, f"No consent for {category} under {purpose}.")
    if consent.state == ConsentEventKind.WITHDRAWN:
        return Reason(Code.CONSENT_WITHDRAWN, f"Consent for {category} under {purpose} was withdrawn.")
    if consent.state != ConsentEventKind.GRANTED or (consent.expires_at is not None and consent.expires_at <= at):
        return Reason(Code.CONSENT_EXPIRED, f"Consent for {category} under {purpose} has expired.")
    if notice is None:
        return Reason(
            Code.NO_CONSENT, "No approved notice is in force, so no consent can apply.", missing_configuration=True
        )
    if pair not in notice.pairs:
        return Reason(Code.NO_CONSENT, f"Notice v{notice.version} does not declare {category} under {purpose}.")
    if consent.notice_version < notice.reconsent_from.get(pair, 0):
        return Reason(
            Code.RECONSENT_REQUIRED,
            f"Consent was given under notice v{consent.notice_version}; "
            f"v{notice.reconsent_from[pair]} changed {category} under {purpose}.",
        )
    return None


def _exclusion_matcher(
    policy: Policy, kind: str, category: str
) -> tuple[re.Pattern[str] | None, tuple[Exclusion, ...]]:
    """One alternation of every pattern of ``kind`` that applies to ``category``, built once per policy.

    A single regex call per context field instead of one per exclusion: the
    default pack has about thirty, and they would otherwise dominate the
    decision. Alternatives keep the exclusions' order, so the first match wins.
    """
    scope = category if category in policy.categories else None
    key = ("exclusions", kind, scope)
    found = policy._memo.get(key)
    if found is None:
        items = tuple(
            e for e in policy.exclusions if e.kind == kind and (e.applies_to(category) if scope else not e.categories)
        )
        combined = "|".join(f"(?P<x{index}>{item.pattern.pattern})" for index, item in enumerate(items))
        found = (re.compile(combined) if items else None, items)
        policy._memo[key] = found
    return found


def _excluded_by(policy: Policy, kind: str, category: str, values: tuple[str, ...]) -> Exclusion | None:
    matcher, items = _exclusion_matcher(policy, kind, category)
    if matcher is None:
        return None
    for value in values:
        match = matcher.fullmatch(value) if value else None
        if match is not None:
            # Every alternative is a named group, so a match always has a last one.
            assert match.lastgroup is not None
            return items[int(match.lastgroup[1:])]
    return None


def _host(domain: str) -> str:
    """The host name an agent meant, however it wrote it: no scheme, path, port or final dot.

    Normalising only ever widens what exclusions match, so a sloppy agent is
    excluded more, never less.
    """
    host = domain.strip().lower()
    if "://" in host:
        host = host.split("://", 1)[1]
    host = host.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _context_checks(context: Context) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The normalised values each kind of exclusion is matched against (empty kinds left out)."""
    host = _host(context.domain)
    checks = (
        (ExclusionKind.APP, (context.app.lower(),) if context.app else ()),
        # "*.bank.com" also covers the bare "bank.com".
        (ExclusionKind.DOMAIN, (host, "." + host) if host else ()),
        (ExclusionKind.FLAG, tuple(flag.lower() for flag in context.flags)),
    )
    return tuple(check for check in checks if check[1])


def _exclusion_reason(policy: Policy, checks: tuple[tuple[str, tuple[str, ...]], ...], category: str) -> Reason | None:
    for kind, values in checks:
        exclusion = _excluded_by(policy, kind, category, values)
        if exclusion is not None:
            return Reason(Code.EXCLUDED_CONTEXT, f"Never captured: {exclusion.label} ({exclusion.reason}).")
    return None


def decide_capture(
    policy: Policy, employee: EmployeeFacts | None, request: CaptureRequest, *, at: datetime
) -> CaptureDecision:
    """The capture decision for each requested category (see the module docstring for the order)."""
    if employee is None:
        unknown = (Reason(Code.UNKNOWN_EMPLOYEE, "The employee is not known.", missing_configuration=True),)
        undecided = tuple(CategoryDecision(category, unknown) for category in request.categories)
        return CaptureDecision(at=at, policy_version=policy.version, consent_version=0, categories=undecided)

    shared: list[Reason] = []
    if employee.status != EmployeeStatus.ACTIVE:
        shared.append(Reason(Code.EMPLOYEE_INACTIVE, f"The employee is {employee.status.replace('_', ' ')}."))
    chain = policy.chain(employee.country, employee.subdivision)
    rule = policy.rule_at(chain, at)
    if rule is None:
        shared.append(
            Reason(
                Code.JURISDICTION_UNKNOWN,
                f"No approved rule is in force for {' → '.join(chain)}.",
                missing_configuration=True,
            )
        )
    elif rule.status == RuleStatus.BLOCK:
        shared.append(Reason(Code.JURISDICTION_BLOCKED, f"Capture is blocked in {rule.region}."))
    open_rule = rule if rule is not None and rule.status != RuleStatus.BLOCK else None
    notice = policy.notice_at(at)
    purpose = policy.purposes.get(request.purpose)
    paused = any(start <= at < until for start, until in employee.pauses)
    checks = _context_checks(request.context)

    def met(kind: str, category: str) -> bool:
        return _precondition_met(
            kind,
            policy=policy,
            employee=employee,
            chain=chain,
            notice=notice,
            purpose=request.purpose,
            category=category,
            at=at,
        )

    # Most preconditions do not depend on the category: evaluate those once.
    per_category = _CATEGORY_PRECONDITIONS.intersection(open_rule.preconditions) if open_rule else frozenset()
    unmet = (
        {kind: not met(kind, "") for kind in open_rule.preconditions if kind not in per_category} if open_rule else {}
    )

    results = []
    for category in request.categories:
        reasons = list(shared)
        if open_rule is not None:
            missing = tuple(
                kind
                for kind in open_rule.preconditions
                if (not met(kind, category) if kind in per_category else unmet[kind])
            )
            if missing:
                reasons.append(
                    Reason(
                        Code.PRECONDITION_MISSING,
                        f"{open_rule.region} requires: {', '.join(missing)}.",
                        missing_configuration=notice is None and any(kind in _NOTICE_PRECONDITIONS for kind in missing),
                        preconditions=missing,
                    )
                )
            if category in open_rule.blocked_categories:
                reasons.append(Reason(Code.CATEGORY_BLOCKED, f"{category} is never captured in {open_rule.region}."))
        if purpose is None:
            reasons.append(
                Reason(
                    Code.PURPOSE_UNKNOWN,
                    f"{request.purpose!r} is not a configured purpose.",
                    missing_configuration=True,
                )
            )
        else:
            if purpose.prohibited:
                reasons.append(Reason(Code.PURPOSE_PROHIBITED, f"{purpose.slug} is a prohibited purpose."))
            if category not in purpose.categories:
                known = category in policy.categories
                detail = (
                    f"{purpose.slug} does not use {category}."
                    if known
                    else f"{category!r} is not a configured data category."
                )
                reasons.append(Reason(Code.CATEGORY_NOT_IN_PURPOSE, detail, missing_configuration=not known))
            consent = _consent_reason(employee, notice, purpose.slug, category, at)
            if consent is not None:
                reasons.append(consent)
        if paused:
            reasons.append(Reason(Code.PAUSED, "The employee paused capture."))
        excluded = _exclusion_reason(policy, checks, category) if checks else None
        if excluded is not None:
            reasons.append(excluded)
        results.append(CategoryDecision(category, tuple(reasons)))
    return CaptureDecision(
        at=at, policy_version=policy.version, consent_version=employee.consent_version, categories=tuple(results)
    )


_NOTICE_PRECONDITIONS = frozenset(
    {
        PreconditionType.NOTICE_ACKNOWLEDGEMENT,
        PreconditionType.NOTICE_ACKNOWLEDGEMENT_ONCE,
        PreconditionType.NOTICE_AT_COLLECTION,
    }
)
# Preconditions whose answer depends on the category asked about.
_CATEGORY_PRECONDITIONS = frozenset({PreconditionType.NOTICE_AT_COLLECTION, PreconditionType.BIOMETRIC_RELEASE})


# Use ------------------------------------------------------------------------------------


class GrantFacts(NamedTuple):
    """A capture grant as issued: what records captured under it may claim.

    A named tuple for the same reason as ``UseRecord``: a stream loads grants by
    the hundred thousand."""

    id: str
    employee: str
    subject: str
    purpose: str
    categories: frozenset[str]
    issued_at: datetime
    expires_at: datetime
    # Where the employee worked when the grant was issued.
    country: str = ""
    subdivision: str = ""


class UseRecord(NamedTuple):
    """One record a pipeline asks about. A named tuple, not a dataclass: a stream
    builds a million of them, and a tuple is several times cheaper to create."""

    id: str
    subject: str
    category: str
    captured_at: datetime
    grant_id: str


_NO_GRANT = (Reason(Code.NO_CAPTURE_GRANT, "No capture grant with this id was ever issued."),)


Scope = tuple[tuple[str, ...], Rule | None]


def capture_scope(policy: Policy, grant: GrantFacts, employee: EmployeeFacts) -> Scope:
    """Where the data was captured: the grant's region chain and the rule in force when it was issued."""
    chain = policy.chain(grant.country or employee.country, grant.subdivision if grant.country else "")
    return chain, policy.rule_at(chain, grant.issued_at)


def current_scope(policy: Policy, employee: EmployeeFacts, at: datetime) -> Scope:
    """Where the employee works now: their region chain and the rule in force at ``at``."""
    chain = policy.chain(employee.country, employee.subdivision)
    return chain, policy.rule_at(chain, at)


def use_limits(
    policy: Policy, *, grant: GrantFacts, employee: EmployeeFacts, purpose: str, category: str, at: datetime
) -> tuple[int | None, int]:
    """(raw retention days or None, termination deletion window days) for a record under ``grant``.

    The strictest of what applies where the data was captured and where the
    employee works now. It depends only on the two scopes, the purpose and
    the category, so a batch may compute it once per combination and pass it
    to ``decide_use``.
    """
    return scoped_limits(
        policy, capture_scope(policy, grant, employee), current_scope(policy, employee, at), purpose, category
    )


def scoped_limits(
    policy: Policy, captured: Scope, current: Scope, purpose: str, category: str
) -> tuple[int | None, int]:
    return policy.retention_limits(
        chains=(captured[0], current[0]), rules=(captured[1], current[1]), purpose=purpose, category=category
    )


def _mismatch(record: UseRecord, purpose: str, grant: GrantFacts) -> Reason:
    problems = []
    if record.category not in grant.categories:
        problems.append(f"category {record.category} is not in the grant")
    if purpose != grant.purpose:
        problems.append(f"the grant is for {grant.purpose}, not {purpose}")
    if record.subject != grant.subject:
        problems.append("the subject is not the grant's")
    if not grant.issued_at <= record.captured_at < grant.expires_at:
        problems.append("captured outside the grant's lifetime")
    return Reason(Code.GRANT_MISMATCH, "; ".join(problems).capitalize() + ".")


def decide_use(
    policy: Policy,
    *,
    record: UseRecord,
    purpose: str,
    grant: GrantFacts | None,
    employee: EmployeeFacts | None,
    at: datetime,
    limits: tuple[int | None, int] | None = None,
) -> tuple[Reason, ...]:
    """Reasons to deny using one record for ``purpose`` at ``at``; empty means allowed.

    ``limits`` is ``use_limits(...)`` for this grant and category, when the
    caller already has it.
    """
    if grant is None:
        return _NO_GRANT
    reasons: list[Reason] = []
    category, captured_at = record.category, record.captured_at
    inside = (
        category in grant.categories
        and purpose == grant.purpose
        and record.subject == grant.subject
        and grant.issued_at <= captured_at < grant.expires_at
    )
    if not inside:
        reasons.append(_mismatch(record, purpose, grant))
    if employee is None:
        reasons.append(Reason(Code.UNKNOWN_EMPLOYEE, "The grant's employee is not known.", missing_configuration=True))
        return tuple(reasons)

    consent = employee.consents.get((purpose, category))
    if consent is None:
        reasons.append(Reason(Code.NO_CONSENT, f"No consent record for {category} under {purpose}."))
    elif consent.state == ConsentEventKind.WITHDRAWN or (
        # Captured before the withdrawal, or under a grant issued before it (so
        # captured while consent was withdrawn, or before): never usable again.
        consent.withdrawn_at is not None and consent.withdrawn_at >= min(captured_at, grant.issued_at)
    ):
        reasons.append(Reason(Code.CONSENT_WITHDRAWN, f"Consent for {category} under {purpose} was withdrawn."))

    if limits is None:
        limits = use_limits(policy, grant=grant, employee=employee, purpose=purpose, category=category, at=at)
    raw_days, termination_days = limits
    if raw_days is None:
        reasons.append(
            Reason(
                Code.RETENTION_EXPIRED, f"No retention limit is configured for {category}.", missing_configuration=True
            )
        )
    elif captured_at + timedelta(days=raw_days) <= at:
        reasons.append(Reason(Code.RETENTION_EXPIRED, f"{category} is kept at most {raw_days} days."))
    if employee.erasure_requested_at is not None and captured_at <= employee.erasure_requested_at:
        reasons.append(Reason(Code.ERASURE_REQUESTED, "The employee asked for their data to be erased."))
    if employee.status == EmployeeStatus.TERMINATED and (
        employee.terminated_at is None or employee.terminated_at + timedelta(days=termination_days) <= at
    ):
        reasons.append(Reason(Code.EMPLOYEE_INACTIVE, f"The employee left more than {termination_days} days ago."))
    known = policy.purposes.get(purpose)
    if known is None:
        reasons.append(
            Reason(Code.PURPOSE_UNKNOWN, f"{purpose!r} is not a configured purpose.", missing_configuration=True)
        )
    elif known.prohibited:
        reasons.append(Reason(Code.PURPOSE_PROHIBITED, f"{purpose} is a prohibited purpose."))
    if employee.destroyed_keys and (category, captured_at.astimezone(UTC).date()) in employee.destroyed_keys:
        reasons.append(Reason(Code.DATA_KEY_DESTROYED, "The data key for this record was destroyed."))
    return tuple(reasons) if reasons else ()


_MICROSECOND = timedelta(microseconds=1)


class UseWindow(NamedTuple):
    """Records under one grant and category that ``decide_use`` allows: this subject, captured in [start, end)."""

    subject: str
    start: datetime
    end: datetime


class UseFloor(NamedTuple):
    """What an employee's facts allow for one category, whatever the grant: captured at ``start`` or later,
    under a grant issued after ``withdrawn_at`` (the pair's latest withdrawal, if any)."""

    start: datetime | None
    withdrawn_at: datetime | None


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def use_floor(
    policy: Policy,
    *,
    purpose: str,
    category: str,
    employee: EmployeeFacts,
    at: datetime,
    limits: tuple[int | None, int],
) -> UseFloor | None:
    """The part of ``use_window`` that depends on the employee, not on the grant; None: nothing is usable.

    ``limits`` is ``use_limits(...)`` for the grant's scopes: grants of one
    employee mostly share them, so a batch computes this once per employee,
    category and limits rather than once per grant.
    """
    consent = employee.consents.get((purpose, category))
    if consent is None or consent.state == ConsentEventKind.WITHDRAWN:
        return None
    raw_days, termination_days = limits
    if raw_days is None:
        return None
    if employee.status == EmployeeStatus.TERMINATED and (
        employee.terminated_at is None or employee.terminated_at + timedelta(days=termination_days) <= at
    ):
        return None
    known = policy.purposes.get(purpose)
    if known is None or known.prohibited:
        return None
    if employee.destroyed_keys and any(key[0] == category for key in employee.destroyed_keys):
        # Destroyed keys depend on the capture day: decide_use checks each record.
        return None
    start = None
    # Retention: usable while captured_at + raw_days > at, that is after at - raw_days
    # (a limit longer than the calendar sets no bound).
    with contextlib.suppress(OverflowError):
        start = _utc(at - timedelta(days=raw_days) + _MICROSECOND)
    if employee.erasure_requested_at is not None:
        erased = _utc(employee.erasure_requested_at + _MICROSECOND)
        start = erased if start is None else max(start, erased)
    return UseFloor(start, consent.withdrawn_at)


def use_window(
    policy: Policy,
    *,
    purpose: str,
    category: str,
    grant: GrantFacts | None,
    employee: EmployeeFacts | None,
    at: datetime,
    limits: tuple[int | None, int] | None = None,
    floor: UseFloor | None = None,
) -> UseWindow | None:
    """The capture times for which ``decide_use`` returns no reason, or None when it may deny every record.

    Every reason of a use decision but ``grant_mismatch`` (subject and capture
    time), ``retention_expired`` and ``erasure_requested`` depends only on the
    grant, the category, the employee and ``at``; those three bound the
    capture time from below and above. So a batch decides a record that names
    the window's subject and falls inside it as allowed with one comparison,
    and asks ``decide_use`` for the reasons of every other record. None also
    covers facts a window cannot express (destroyed data keys): the caller
    then asks ``decide_use`` for each record. Bounds are in UTC, so comparing
    them with a UTC capture time takes the fast path. ``floor`` is
    ``use_floor(...)`` for these facts and limits, when the caller has it.
    """
    if grant is None or employee is None:
        return None
    if category not in grant.categories or purpose != grant.purpose:
        return None
    if floor is None:
        if limits is None:
            limits = use_limits(policy, grant=grant, employee=employee, purpose=purpose, category=category, at=at)
        floor = use_floor(policy, purpose=purpose, category=category, employee=employee, at=at, limits=limits)
        if floor is None:
            return None
    return grant_window(grant, floor)


def grant_window(grant: GrantFacts, floor: UseFloor) -> UseWindow | None:
    """``use_window`` for a grant whose purpose and category the caller already matched, from the floor."""
    # Inside the grant the capture time is never before issue, so a withdrawal
    # at or after issue denies every record, and one before it none.
    if floor.withdrawn_at is not None and floor.withdrawn_at >= grant.issued_at:
        return None
    start, end = _utc(grant.issued_at), _utc(grant.expires_at)
    if floor.start is not None and floor.start > start:
        start = floor.start
    if start >= end:
        return None
    return UseWindow(grant.subject, start, end)
