"""People's vocabularies: where an employee stands.

Declared here, not in ``models``, so the pure decision engine can import the
same values the model fields store (see ``consentry.vocabulary``).
"""

from __future__ import annotations

from consentry.vocabulary import Vocabulary


class EmployeeStatus(Vocabulary):
    ACTIVE = "active", "Active"
    ON_LEAVE = "on_leave", "On leave"
    TERMINATED = "terminated", "Terminated"
