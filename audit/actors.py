"""Who did it: the actor label every audit entry carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Actor:
    """The person or system behind a state change, as the ledger names it."""

    kind: str  # user, system, token, hr
    ref: str
    user_id: int | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.ref}"

    @classmethod
    def for_user(cls, user: Any) -> Actor:
        return cls(kind="user", ref=user.get_username(), user_id=user.pk)

    @classmethod
    def system(cls, name: str = "consentry") -> Actor:
        return cls(kind="system", ref=name)
