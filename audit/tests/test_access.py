from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import AnonymousUser, Permission
from guardian.shortcuts import assign_perm

from audit import access as access_module
from audit.access import NO_ACCESS, AuditAccess, access_for
from conftest import make_user
from governance.models import Region
from people.roles import Role, ensure_roles

pytestmark = pytest.mark.django_db


class _Entry:
    def __init__(self, region: str, subject: str = ""):
        self.region, self.subject = region, subject


@pytest.fixture
def auditor_role():
    def make(name: str):
        user = make_user(name)
        user.groups.add(ensure_roles()[Role.AUDITOR])
        return user

    return make


def test_a_group_region_covers_its_member_countries_and_their_subdivisions(small_policy, auditor_role):
    user = auditor_role("eu-auditor")
    assign_perm("governance.audit_region", user, Region.objects.get(code="EU"))
    access = access_for(user)
    assert access.can_audit and not access.all_regions
    assert access.regions == {"EU", "DE", "FR"} and access.countries == {"DE", "FR"}
    assert [access.may_read(_Entry(code)) for code in ("EU", "DE", "DE-BE", "FR", "US", "US-NY", "")] == [
        True,
        True,
        True,
        True,
        False,
        False,
        False,
    ]


def test_a_subdivision_covers_only_itself(small_policy, auditor_role):
    user = auditor_role("ny-auditor")
    assign_perm("governance.audit_region", user, Region.objects.get(code="US-NY"))
    access = access_for(user)
    assert access.may_read(_Entry("US-NY")) and not access.may_read(_Entry("US"))
    assert not access.may_read(_Entry("US-CA"))


def test_the_global_permission_covers_every_region_and_entries_without_one(auditor_role):
    user = auditor_role("global")
    user.user_permissions.add(Permission.objects.get(codename="audit_region"))
    access = access_for(user)
    assert access.all_regions and access.may_read(_Entry("")) and access.may_read(_Entry("JP"))


def test_region_permissions_without_the_auditor_role_grant_nothing(small_policy):
    user = make_user("not-an-auditor")
    assign_perm("governance.audit_region", user, Region.objects.get(code="US"))
    user.user_permissions.add(Permission.objects.get(codename="audit_region"))
    access = access_for(user)
    assert not access.can_audit and not access.may_read(_Entry("US"))


def test_the_auditor_role_without_any_region_reads_nothing(auditor_role):
    access = access_for(auditor_role("unscoped"))
    assert access.can_audit and not access.may_read(_Entry("US")) and not access.may_read(_Entry(""))


def test_an_employee_may_prove_only_entries_about_themselves(ny_employee):
    access = access_for(ny_employee.user)
    assert access.subjects == {ny_employee.hr_id}
    assert access.may_prove(_Entry("US-NY", ny_employee.hr_id))
    assert not access.may_prove(_Entry("US-NY", "E0000")) and not access.may_prove(_Entry("US-NY", ""))


def test_anonymous_and_inactive_users_get_no_access():
    assert access_for(AnonymousUser()) is NO_ACCESS
    user = make_user("gone", is_active=False)
    assert access_for(user) is NO_ACCESS


def test_a_broken_resolver_denies(settings, auditor_role):
    settings.CONSENTRY_AUDIT_ACCESS_RESOLVER = "governance.nowhere.resolver"
    assert access_for(auditor_role("any")) is NO_ACCESS


def test_a_frozen_scope_round_trips_through_an_export():
    scoped = AuditAccess(can_audit=True, regions=frozenset({"US", "US-NY"}), countries=frozenset({"US"}))
    assert AuditAccess.from_scope_json(scoped.scope_json()) == scoped
    assert AuditAccess.from_scope_json({"all": True}).all_regions


# --- one model of the audit scope ------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("consentry", "audit", "people", "governance", "consent", "decisions")
SCOPE_NAMES = {"AuditAccess", "AuditScope", "NO_ACCESS", "access_for", "audit_scope", "audit_access_for"}
# Granting the permission is not working out a scope; everything else that names it is.
GRANTS = {"assign_perm", "remove_perm"}


def _product_modules():
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if "tests" in parts or "migrations" in parts:
                continue
            yield ".".join(parts)[: -len(".py")].removesuffix(".__init__"), ast.parse(path.read_text(), str(path))


def _scope_definitions(tree: ast.Module) -> set[str]:
    defined = {
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.name in SCOPE_NAMES
    }
    for node in tree.body:
        if isinstance(node, ast.Assign):
            defined |= {t.id for t in node.targets if isinstance(t, ast.Name) and t.id in SCOPE_NAMES}
    return defined


def _region_permission_lookups(tree: ast.Module) -> int:
    """Uses of ``governance.audit_region`` other than as the permission granted by assign_perm."""
    granted = {
        id(node.args[0])
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) in GRANTS
        and node.args
    }
    return sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value == "governance.audit_region" and id(node) not in granted
    )


def test_one_module_declares_the_audit_scope_and_one_works_it_out():
    assert importlib.util.find_spec("audit.scope") is None
    declared, computed = {}, set()
    for name, tree in _product_modules():
        if found := _scope_definitions(tree):
            declared[name] = found
        if _region_permission_lookups(tree):
            computed.add(name)
    assert declared == {
        "audit.access": {"AuditAccess", "NO_ACCESS", "access_for"},
        "governance.audit_scope": {"audit_access_for"},
    }
    assert computed == {"governance.audit_scope"}
    # The ledger reaches the computation only through the setting, never by import.
    assert django_settings.CONSENTRY_AUDIT_ACCESS_RESOLVER == "governance.audit_scope.audit_access_for"
    imported = {
        ((node.module or "") if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(ast.parse(Path(access_module.__file__).read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported.isdisjoint({"people", "governance", "consent", "decisions"})
