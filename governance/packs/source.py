"""Reading a pack file: YAML to data, plus the line every value came from.

Legal teams edit packs by hand, so every error must point at a line. The YAML
is composed into a node tree first (each node knows where it starts), walked
once to map paths like ``rules[3].region`` to line numbers and to catch
duplicate keys (which PyYAML would otherwise silently resolve to the last
one), and only then constructed into plain data.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

PathPart = str | int
NodePath = tuple[PathPart, ...]

_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class PackLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1's surprises for hand-written policy.

    Only ``true``/``false`` are booleans (YAML 1.1 reads Norway's code ``NO``
    as false), integers are plain decimals (``030`` would be octal 24 days),
    and dates stay text so they are parsed, time zone and all, by the checks.
    Aliases are refused: a reviewer must see every value where it applies,
    and a few nested aliases can expand into billions of values.
    """

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a policy pack; write the value out", mark
            )
        return super().compose_node(parent, index)


PackLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in {_BOOL_TAG, _INT_TAG, _FLOAT_TAG, _TIMESTAMP_TAG}]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
PackLoader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
PackLoader.add_implicit_resolver(_INT_TAG, re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))
PackLoader.add_implicit_resolver(
    _FLOAT_TAG, re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"), list("-+.0123456789")
)


def format_path(path: NodePath) -> str:
    """``("rules", 3, "region")`` → ``rules[3].region``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass(frozen=True, slots=True)
class PackError:
    """One problem in a pack, with where it is."""

    message: str
    path: str = ""
    line: int | None = None
    column: int | None = None

    def format(self, filename: str) -> str:
        """``default.yaml:42: rules[3].region: 'XX' is not …``: the shape editors and CI logs link."""
        where = filename
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class PackInvalid(Exception):
    """The pack cannot be loaded; ``errors`` lists every problem found."""

    def __init__(self, *, filename: str, errors: list[PackError]):
        super().__init__(f"{filename}: {len(errors)} error(s)")
        self.filename = filename
        self.errors = errors

    def lines(self) -> list[str]:
        return [error.format(self.filename) for error in self.errors]


@dataclass(frozen=True)
class PackSource:
    """A parsed pack: its data, its digest, and a line number for every path."""

    filename: str
    sha256: str
    data: Any
    lines: Mapping[NodePath, int]
    # Problems found while reading (duplicate keys); checking adds the rest.
    errors: list[PackError] = field(default_factory=list)

    def line_of(self, path: NodePath) -> int | None:
        """The line of ``path``, or of its nearest ancestor present in the file."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def error(self, path: NodePath, message: str) -> PackError:
        return PackError(message=message, path=format_path(path), line=self.line_of(path))

    def section(self, name: str) -> list[tuple[int, dict[str, Any]]]:
        """``(index, entry)`` for the well-formed entries of a list section; the schema reports the rest."""
        entries = self.data.get(name) if isinstance(self.data, dict) else None
        if not isinstance(entries, list):
            return []
        return [(index, entry) for index, entry in enumerate(entries) if isinstance(entry, dict)]


def _walk(node: yaml.Node, path: NodePath, lines: dict[NodePath, int], errors: list[PackError]) -> None:
    # A mapping value's line is its key's line: that is where a reader looks.
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            key_line = key_node.start_mark.line + 1
            if key in first_seen:
                errors.append(
                    PackError(
                        message=f"duplicate key {key!r} (first at line {first_seen[key]}); only one is allowed",
                        path=format_path((*path, key)),
                        line=key_line,
                    )
                )
                continue
            first_seen[key] = key_line
            lines[(*path, key)] = key_line
            _walk(value_node, (*path, key), lines, errors)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, errors)


def _syntax_error(exc: yaml.YAMLError) -> PackError:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        context = f" ({exc.context})" if exc.context else ""
        return PackError(
            message=f"YAML syntax error: {exc.problem}{context}", line=mark.line + 1, column=mark.column + 1
        )
    return PackError(message=f"YAML syntax error: {exc}")


def parse_pack(content: bytes, *, filename: str) -> PackSource:
    """Parse pack bytes. Raises ``PackInvalid`` when the file is not YAML at all."""
    digest = hashlib.sha256(content).hexdigest()
    try:
        # The reader decodes the first bytes at once: bytes that are not UTF-8
        # fail here, before composing starts.
        loader = PackLoader(content)
    except yaml.YAMLError as exc:
        raise PackInvalid(filename=filename, errors=[_syntax_error(exc)]) from exc
    try:
        node = loader.get_single_node()
        if node is None:
            raise PackInvalid(filename=filename, errors=[PackError(message="the file is empty", line=1)])
        lines: dict[NodePath, int] = {}
        errors: list[PackError] = []
        _walk(node, (), lines, errors)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise PackInvalid(filename=filename, errors=[_syntax_error(exc)]) from exc
    finally:
        loader.dispose()
    return PackSource(filename=filename, sha256=digest, data=data, lines=lines, errors=errors)
