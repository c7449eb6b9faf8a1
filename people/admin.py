"""Employees come from HR provisioning; admin shows them and can change status through services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.actors import Actor
from audit.admin import ReadOnlyAdmin
from consentry.errors import DomainError
from people.models import Employee, EmployeeStatus
from people.services import employee_set_status


def _set_status(request: HttpRequest, queryset: QuerySet[Employee], status: str) -> None:
    actor = Actor.for_user(request.user)
    for employee in queryset:
        try:
            employee_set_status(employee=employee, status=status, actor=actor)
        except DomainError as exc:
            messages.error(request, f"{employee.hr_id}: {exc.detail}")


@admin.register(Employee)
class EmployeeAdmin(ReadOnlyAdmin):
    list_display = ("hr_id", "display_name", "country", "subdivision", "entity", "site", "status")
    list_filter = ("status", "country", "entity")
    search_fields = ("hr_id", "display_name", "email")
    actions = ("mark_on_leave", "mark_active", "terminate")

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # Actions need change permission to show; fields stay read-only.
        return request.user.has_perm("people.change_employee")

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return [field.name for field in Employee._meta.fields]

    @admin.action(description="Mark selected employees on leave")
    def mark_on_leave(self, request: HttpRequest, queryset: QuerySet[Employee]) -> None:
        _set_status(request, queryset, EmployeeStatus.ON_LEAVE)

    @admin.action(description="Mark selected employees active")
    def mark_active(self, request: HttpRequest, queryset: QuerySet[Employee]) -> None:
        _set_status(request, queryset, EmployeeStatus.ACTIVE)

    @admin.action(description="Terminate selected employees")
    def terminate(self, request: HttpRequest, queryset: QuerySet[Employee]) -> None:
        _set_status(request, queryset, EmployeeStatus.TERMINATED)
