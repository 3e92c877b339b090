"""A small FHIRPath subset for rule paths: member navigation only.

``Observation.valueQuantity.value`` names that element in every Observation; lists are crossed
implicitly, as FHIRPath flattens collections, so ``Patient.address.line`` is every line of every
address. The first segment is a resource type, or ``Resource`` for every resource type; a rule for a
specific type overrides a ``Resource`` rule on the same or an enclosing path. Choice elements use
their JSON names (``valueQuantity``, ``onsetDateTime``), as the FHIR JSON format spells them.

Rules compile into one tree per resource type, so applying them is one walk over the resource that
only visits elements present in it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from privacy.deid.ruleset import Rule

ANY_RESOURCE = "Resource"
_SEGMENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


class PathError(ValueError):
    """The path is not in the supported FHIRPath subset."""


def parse_path(text: str) -> tuple[str, ...]:
    segments = tuple(s.strip() for s in text.split("."))
    if len(segments) < 2:
        raise PathError("a path needs a resource type and at least one element")
    if not all(_SEGMENT.fullmatch(s) for s in segments):
        raise PathError("path segments must be element names (member navigation only)")
    if not segments[0][0].isupper():
        raise PathError("a path starts with a resource type or Resource")
    return segments


@dataclass
class Node:
    """One element path: the rule deciding it, or the rules of elements inside it."""

    rule: Rule | None = None
    children: dict[str, Node] = field(default_factory=dict)


def _conflicts(root: Node, path: tuple[str, ...]) -> bool:
    """True if a rule already decides `path`, an enclosing path, or a path inside it."""
    node = root
    for segment in path:
        if node.rule is not None:
            return True
        if segment not in node.children:
            return False
        node = node.children[segment]
    return node.rule is not None or bool(node.children)


def _insert(root: Node, path: tuple[str, ...], rule: Rule) -> None:
    node = root
    for segment in path:
        node = node.children.setdefault(segment, Node())
    node.rule = rule


def compile_tree(rules: Iterable[Rule], resource_type: str) -> Node:
    """The rule tree of one resource type: its own rules first, then the `Resource` rules that no
    rule of its own overrides. Between rules of the same level the first one listed wins."""
    rules = list(rules)
    root = Node()
    for level in (resource_type, ANY_RESOURCE):
        for rule in rules:
            if rule.path[0] == level and not _conflicts(root, rule.path[1:]):
                _insert(root, rule.path[1:], rule)
    return root
