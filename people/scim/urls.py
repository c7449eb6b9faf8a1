"""/scim/v2/: the SCIM service provider's endpoints (RFC 7644 §3.2)."""

from __future__ import annotations

from django.urls import path, re_path

from people.scim import views

app_name = "scim"

urlpatterns = [
    path("ServiceProviderConfig", views.ServiceProviderConfigView.as_view(), name="service-provider-config"),
    path("ResourceTypes", views.ResourceTypesView.as_view(), name="resource-types"),
    path("ResourceTypes/<str:pk>", views.ResourceTypeView.as_view(), name="resource-type"),
    path("Schemas", views.SchemasView.as_view(), name="schemas"),
    path("Schemas/<str:pk>", views.SchemaView.as_view(), name="schema"),
    path("Users", views.UsersView.as_view(), name="users"),
    path("Users/.search", views.UsersSearchView.as_view(), name="users-search"),
    # One resource type is served, so a search at the root is a search of Users.
    path(".search", views.UsersSearchView.as_view(), name="search"),
    path("Users/<str:pk>", views.UserView.as_view(), name="user"),
    re_path(r"^.*$", views.NotFoundView.as_view(), name="not-found"),
]
