"""Apply a rule set to one patient's resources: one walk per resource over its compiled rule tree.

Only elements a rule reaches are written to the output; everything else is counted and left behind.
Counts are keyed "<identifier>:<method>" (e.g. "name:redact", "date:dateShift"); they carry no values.
Two methods write to `Patient.extension`: the age (`generalize` of birthDate) and `keepExtension`; both
append to the one list, in whichever order the source's keys come.

Every string a pattern, a value set or a code system's vocabulary judges is normalised first
(`privacy.deid.normalize`: NFKC, no format characters), and what is kept is the normalised string, so
the output holds exactly what was judged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from privacy.deid import methods
from privacy.deid.normalize import normalize
from privacy.deid.paths import Node, compile_tree
from privacy.deid.resource_types import type_name
from privacy.deid.ruleset import Rule, RuleSet
from privacy.deid.scrub import Scrubber

_CLASSIFIERS = {"identifier": methods.identifier_kind, "telecom": methods.telecom_kind}
_DROP = object()  # `keep` found the value unfit (a kept value may itself be falsy: 0, False, "")


@dataclass
class PatientContext:
    """What the methods need for one patient. Lives for one bundle, is never stored or logged."""

    key: bytes
    today: date
    shift: timedelta
    scrubber: Scrubber
    types: Mapping[str, str] = field(default_factory=dict)  # raw resource id -> resourceType
    counts: Counter[str] = field(default_factory=Counter)
    # The patient is (or, by a partial birth date, may be) at the age cap or over: no date is kept.
    hide_dates: bool = False
    # Dates before this day say by themselves that the patient is at the age cap or over.
    dates_from: date | None = None


class Engine:
    """A rule set compiled for use: one rule tree per resource type, built once."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.trees = {kind: compile_tree(rules.rules, kind) for kind in rules.resource_types}

    def apply(self, resource: Mapping[str, Any], ctx: PatientContext) -> dict[str, Any] | None:
        """The de-identified resource, or None if its type is not allowed."""
        kind = resource.get("resourceType")
        tree = self.trees.get(kind) if isinstance(kind, str) else None
        if tree is None:
            ctx.counts[f"resource.{type_name(kind)}:redact"] += 1  # never the sender's own text
            return None
        out: dict[str, Any] = {"resourceType": kind}
        self._walk(resource, tree, out, ctx, top=True)
        return out

    def _walk(
        self, src: Mapping[str, Any], node: Node, out: dict[str, Any], ctx: PatientContext, top=False
    ) -> None:
        for key, value in src.items():
            child = node.children.get(key)
            if child is None:
                if not (top and key == "resourceType"):
                    ctx.counts["unlisted:redact"] += 1
            elif child.rule is not None:
                self._apply_rule(child.rule, key, value, out, ctx)
            else:
                kept = self._descend(value, child, ctx)
                if kept is not None:
                    out[key] = kept

    def _descend(self, value: Any, node: Node, ctx: PatientContext) -> Any:
        if isinstance(value, list):
            items = [x for x in (self._descend(v, node, ctx) for v in value) if x is not None]
            return items or None
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            self._walk(value, node, out, ctx)
            return out or None
        ctx.counts["unlisted:redact"] += 1  # a primitive where the rules expect an element
        return None

    def _apply_rule(self, rule: Rule, key: str, value: Any, out: dict[str, Any], ctx: PatientContext) -> None:
        items = value if isinstance(value, list) else [value]
        if rule.method == "redact":
            classify = _CLASSIFIERS.get(rule.identifier)
            for item in items:
                ctx.counts[f"{classify(item) if classify else rule.identifier}:redact"] += 1
            return
        if rule.method == "generalize" and rule.params.get("to") == "ageInYears":
            self._age(value, out, ctx)
            return
        if rule.method == "keepExtension":
            self._keep_extensions(rule, key, value, out, ctx)
            return
        results = [self._transform(rule, key, item, ctx) for item in items]
        kept = [r for r in results if r is not None]
        ctx.counts[f"{rule.identifier}:{rule.method}"] += len(kept)
        ctx.counts[f"{rule.identifier}:redact"] += len(results) - len(kept)
        if kept:
            out[key] = kept if isinstance(value, list) else kept[0]

    def _age(self, birth_date: Any, out: dict[str, Any], ctx: PatientContext) -> None:
        age = methods.generalize_age(birth_date, ctx.today, self.rules.age_cap)
        if age is None:
            ctx.counts["birth_date:redact"] += 1
            return
        ctx.counts["birth_date:generalize"] += 1
        extension = {"url": self.rules.age_extension_url, "valueInteger": age}
        out.setdefault("extension", []).append(extension)

    def _keep_extensions(
        self, rule: Rule, key: str, value: Any, out: dict[str, Any], ctx: PatientContext
    ) -> None:
        kept, dropped = methods.keep_extensions(value, rule.params["allow"], rule.params["codeSystems"])
        ctx.counts[f"{rule.identifier}:keepExtension"] += len(kept)
        ctx.counts[f"{rule.identifier}:redact"] += dropped
        if kept:
            # Merged, never assigned: the age extension (from birthDate) may already be in this list,
            # or may be appended to it later in the walk.
            out.setdefault(key, []).extend(kept)

    def _transform(self, rule: Rule, key: str, value: Any, ctx: PatientContext) -> Any:
        method, params = rule.method, rule.params
        if method == "keep":
            kept = self._kept(value, params, ctx)
            if kept is not _DROP:
                return kept
            if params.get("invalid") == "reject":
                # Dropping a lab value the recommendation reads would hide it: refuse the record.
                raise ValueError("an element the rules keep holds a value of the wrong type")
            return None
        if method == "substitute":
            return params["value"]
        if method == "keepCoding":
            return self._coding(value, params["systems"], ctx)
        if method == "dateShift":
            if ctx.hide_dates:
                return None
            return methods.shift_date(value, ctx.shift, not_before=ctx.dates_from)
        if method == "cryptoHash":
            if key == "reference":
                return methods.hash_reference(ctx.key, value, ctx.types)
            return methods.hash_id(ctx.key, value) if isinstance(value, str | int) else None
        if method == "generalize":  # to: zip3 (ageInYears is handled apart: it changes the element)
            return methods.zip3(value, self.rules.restricted_zip3) if isinstance(value, str) else None
        if method == "scrub":
            return self._scrub(value, params.get("encoding", "utf-8"), ctx)
        raise AssertionError(f"unknown method {method}")  # the rule file loader rejects these

    def _kept(self, value: Any, params: Mapping[str, Any], ctx: PatientContext) -> Any:
        """The value to keep, or _DROP. Only primitives are kept (the rule file lists leaves), of the
        declared type, pattern and value set, and never a string holding one of the patient's own
        identifiers, whatever element it is in. Strings are judged, and kept, normalised."""
        if params.get("type") == "number":
            return value if isinstance(value, int | float) and not isinstance(value, bool) else _DROP
        if not isinstance(value, str | int | float | bool):
            return _DROP
        constrained = "pattern" in params or "valueSet" in params
        if not isinstance(value, str):
            return _DROP if constrained else value
        value = normalize(value)
        pattern = self.rules.patterns.get(params["pattern"]) if "pattern" in params else None
        if pattern is not None and not pattern.fullmatch(value):
            return _DROP
        if "valueSet" in params and value not in self.rules.value_sets[params["valueSet"]]:
            return _DROP
        return _DROP if ctx.scrubber.terms.matches(value) else value

    def _coding(self, coding: Any, systems: list[str], ctx: PatientContext) -> dict[str, str] | None:
        """`{"system", "code"}` of a Coding whose system this rule allows and whose code belongs to
        that system (its listed codes or its shape), or None. Nothing else of the Coding is copied:
        display, version and extensions are free text or unchecked."""
        if not isinstance(coding, Mapping):
            return None
        system, code = coding.get("system"), coding.get("code")
        if not isinstance(system, str) or not isinstance(code, str):
            return None
        system, code = normalize(system), normalize(code)
        if system not in systems or not self.rules.code_systems[system].admits(code):
            return None
        return None if ctx.scrubber.terms.matches(code) else {"system": system, "code": code}

    def _scrub(self, value: Any, encoding: str, ctx: PatientContext) -> str | None:
        if not isinstance(value, str):
            return None
        done = ctx.scrubber.scrub_base64(value) if encoding == "base64" else ctx.scrubber.scrub(value)
        if done is None:
            return None
        for entity, n in done.counts.items():
            ctx.counts[f"text.{entity}:scrub"] += n
        return done.text
