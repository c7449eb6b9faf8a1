"""Labelled string enums that both the models and the pure decision engine can import.

A model's ``choices`` and the engine's comparisons must name the same values,
and the engine imports no Django. So a vocabulary the engine reads (employee
status, rule status, preconditions, consent states, exclusion kinds) is
declared once, as a ``Vocabulary`` in its app's ``vocabulary`` module, and the
app's models use that very class for their fields.

``Vocabulary`` behaves like Django's ``models.TextChoices`` where the project
relies on it: members are ``str`` and carry a ``label``; the class offers
``choices``, ``values``, ``labels`` and ``names``, and ``value in Class``
accepts plain strings. It is a plain ``enum.StrEnum``, so importing it pulls
in neither the ORM nor settings.
"""

from __future__ import annotations

from enum import EnumType, StrEnum, nonmember
from typing import Self


class _VocabularyType(EnumType):
    def _vocabulary_members(cls) -> list[Vocabulary]:
        # EnumType types iteration through a self-type bound on the class
        # itself; on a metaclass it only binds with the result type given.
        return list(cls)

    @property
    def choices(cls) -> list[tuple[str, str]]:
        return [(member.value, member.label) for member in cls._vocabulary_members()]

    @property
    def values(cls) -> list[str]:
        return [member.value for member in cls._vocabulary_members()]

    @property
    def labels(cls) -> list[str]:
        return [member.label for member in cls._vocabulary_members()]

    @property
    def names(cls) -> list[str]:
        return [member.name for member in cls._vocabulary_members()]

    def __contains__(cls, value: object) -> bool:
        # As Django's choices: "active" in EmployeeStatus, not only members.
        if isinstance(value, cls):
            return True
        return isinstance(value, str) and value in cls._value2member_map_


class Vocabulary(StrEnum, metaclass=_VocabularyType):
    """A ``StrEnum`` whose members are declared ``NAME = "value", "Label"``."""

    _value_: str
    label: str
    # Templates must not call the class (it is callable, as every enum).
    do_not_call_in_templates = nonmember(True)

    def __new__(cls, value: str, label: str | None = None) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label if label is not None else value.replace("_", " ").capitalize()
        return member
