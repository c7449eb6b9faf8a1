"""Consent vocabularies: what a consent event does, and so where a pair stands.

Declared here, not in ``models``, so the pure decision engine can import the
same values the model fields store (see ``consentry.vocabulary``).
"""

from __future__ import annotations

from consentry.vocabulary import Vocabulary


class ConsentEventKind(Vocabulary):
    GRANTED = "granted", "Granted"
    WITHDRAWN = "withdrawn", "Withdrawn"
    EXPIRED = "expired", "Expired"
