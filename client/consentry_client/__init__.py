"""Consentry client library: talk to a Consentry deployment, and check its evidence offline.

``consentry_client.verify`` verifies audit export bundles and inclusion
proofs with nothing but ``cryptography`` and the audit public keys.
"""

from __future__ import annotations

__version__ = "0.1.0"
