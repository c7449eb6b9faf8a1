"""Give test users their roles and region scopes, the way the demo and operators do.

Plain functions rather than fixtures, so each app's tests (and the browser
tests) build exactly the personas they need on top of the root conftest's.
"""

from __future__ import annotations

from guardian.shortcuts import assign_perm

from people.roles import Role, ensure_roles


def grant_role(user, role: str):
    groups = ensure_roles()
    user.groups.add(groups[role])
    # Permissions are cached on the user object: drop the cache so checks see the new role.
    for cache in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(cache, None)
    return user


def make_legal(user, *regions):
    """A legal user who manages the given regions (objects of governance.Region)."""
    grant_role(user, Role.LEGAL)
    for region in regions:
        assign_perm("governance.manage_region_policy", user, region)
    return user


def make_approver(user, *regions, legal: bool = False):
    """An approver for the given regions, or for every region when none is given."""
    grant_role(user, Role.APPROVER)
    if legal:
        grant_role(user, Role.LEGAL)
    if regions:
        for region in regions:
            assign_perm("governance.approve_region_policy", user, region)
    else:
        assign_perm("governance.approve_region_policy", user)
    return user


def make_auditor(user, *regions):
    """An auditor of the given regions, or of every region when none is given."""
    grant_role(user, Role.AUDITOR)
    if regions:
        for region in regions:
            assign_perm("governance.audit_region", user, region)
    else:
        assign_perm("governance.audit_region", user)
    return user


def sign_in(client, user):
    """Sign ``user`` in on the test client, with the second factor proven when their role needs one."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from people.second_factor import needs_second_factor

    client.force_login(user)
    if needs_second_factor(user):
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
            user=user, name="test", confirmed=True
        )
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return user
