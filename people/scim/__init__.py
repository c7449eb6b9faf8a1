"""SCIM 2.0 service provider (RFC 7643/7644) for HR provisioning of employees.

``resources`` declares what Consentry publishes and accepts, ``mapping`` turns
a resource into an HR record and back, ``filters`` turns a SCIM filter into a
database query, and ``views`` serves the endpoints under ``/scim/v2/``.
"""
