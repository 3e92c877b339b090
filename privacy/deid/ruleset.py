"""The declarative rule file: load, validate and fingerprint it.

A rule file (JSON, see ``rules/default.json``) names the resource types that may pass and, for each
FHIRPath-style element path, one method: keep, keepExtension, redact, dateShift, cryptoHash,
generalize, substitute or scrub. Whatever no rule keeps is removed. The SHA-256 of the file's bytes names the configuration
in lineage, so the hash an auditor computes with ``sha256sum`` is the one MLflow records.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from privacy.deid.codes import SHAPES, Vocabulary
from privacy.deid.paths import PathError, parse_path

METHODS = frozenset(
    {
        "keep",
        "keepCoding",
        "keepExtension",
        "redact",
        "dateShift",
        "cryptoHash",
        "generalize",
        "substitute",
        "scrub",
    }
)
GENERALIZATIONS = frozenset({"ageInYears", "zip3"})
# What becomes of the dates of a patient aged `ageCap` or over; "redact" is the only choice so far,
# and the default, so a rule file that predates the parameter gets it too.
DATES_AT_AGE_CAP = frozenset({"redact"})
DEFAULT_RULES = "default.json"


class RuleFileError(ValueError):
    """The rule file is malformed. Messages name rules by position and never quote patient data."""


@dataclass(frozen=True)
class Rule:
    path: tuple[str, ...]  # (resource type or "Resource", element, element, ...)
    method: str
    identifier: str = "clinical"  # what the element holds, for the report ("name", "date", ...)
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleSet:
    name: str
    version: str
    sha256: str  # of the rule file's bytes
    resource_types: frozenset[str]
    rules: tuple[Rule, ...]
    parameters: Mapping[str, Any]
    patterns: Mapping[str, re.Pattern[str]]
    code_systems: Mapping[str, Vocabulary] = field(default_factory=dict)  # system URL -> its codes
    value_sets: Mapping[str, frozenset[str]] = field(default_factory=dict)  # name -> allowed values

    @property
    def age_cap(self) -> int:
        return int(self.parameters.get("ageCap", 90))

    @property
    def restricted_zip3(self) -> frozenset[str]:
        return frozenset(self.parameters.get("restrictedZip3", ()))

    @property
    def age_extension_url(self) -> str:
        return str(self.parameters["ageExtensionUrl"])

    @property
    def dates_at_age_cap(self) -> str:
        return str(self.parameters.get("datesAtAgeCap", "redact"))


def _string_lists(value: Any) -> bool:
    """A non-empty mapping of strings to non-empty lists of strings."""
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(
            isinstance(k, str)
            and isinstance(v, list)
            and bool(v)
            and all(isinstance(x, str) and x for x in v)
            for k, v in value.items()
        )
    )


def _check_keep_extension(n: int, path: tuple[str, ...], params: Mapping[str, Any]) -> None:
    if path[-1] != "extension":
        raise RuleFileError(f"rule {n}: keepExtension applies to an extension element")
    if not _string_lists(params.get("allow")):
        raise RuleFileError(f"rule {n}: keepExtension needs allow: extension URL -> sub-extension URLs")
    if any("text" in subs for subs in params["allow"].values()):
        raise RuleFileError(f"rule {n}: keepExtension never keeps a text sub-extension (free text)")
    if not _string_lists(params.get("codeSystems")):
        raise RuleFileError(f"rule {n}: keepExtension needs codeSystems: code system -> allowed codes")


def _check_keep_coding(
    n: int, path: tuple[str, ...], params: Mapping[str, Any], code_systems: Mapping[str, Vocabulary]
) -> None:
    if path[-1] != "coding" and not path[-1].endswith("Coding"):
        raise RuleFileError(f"rule {n}: keepCoding applies to a coding or value[x]Coding element")
    systems = params.get("systems")
    if not isinstance(systems, list) or not systems or not all(isinstance(s, str) for s in systems):
        raise RuleFileError(f"rule {n}: keepCoding needs systems: a list of code system URLs")
    if any(s not in code_systems for s in systems):
        raise RuleFileError(f"rule {n}: keepCoding names a system that parameters.codeSystems lacks")


def _code_systems(raw: Any) -> dict[str, Vocabulary]:
    """parameters.codeSystems: system URL -> {"codes": [...]} or {"shape": "<name in codes.SHAPES>"}."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise RuleFileError("parameters.codeSystems must map code system URLs to vocabularies")
    systems: dict[str, Vocabulary] = {}
    for system, spec in raw.items():
        if isinstance(spec, Mapping) and set(spec) == {"shape"} and spec["shape"] in SHAPES:
            systems[system] = Vocabulary(shape=spec["shape"])
        elif isinstance(spec, Mapping) and set(spec) == {"codes"} and _string_lists({"": spec["codes"]}):
            systems[system] = Vocabulary.listed(spec["codes"])
        else:
            raise RuleFileError(
                f"parameters.codeSystems: each system needs codes (a list) or shape ({', '.join(sorted(SHAPES))})"
            )
    return systems


def _value_sets(raw: Any) -> dict[str, frozenset[str]]:
    if raw is None:
        return {}
    if not _string_lists(raw):
        raise RuleFileError("parameters.valueSets must map names to non-empty lists of strings")
    return {name: frozenset(values) for name, values in raw.items()}


def _rule(
    n: int,
    raw: Any,
    patterns: Mapping[str, re.Pattern[str]],
    code_systems: Mapping[str, Vocabulary] | None = None,
    value_sets: Mapping[str, frozenset[str]] | None = None,
) -> Rule:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("path"), str):
        raise RuleFileError(f"rule {n}: needs a string path")
    method = raw.get("method")
    if method not in METHODS:
        raise RuleFileError(f"rule {n}: method must be one of {', '.join(sorted(METHODS))}")
    try:
        path = parse_path(raw["path"])
    except PathError as err:
        raise RuleFileError(f"rule {n}: {err}") from None
    params = {k: v for k, v in raw.items() if k not in ("path", "method", "identifier")}
    if method == "generalize" and params.get("to") not in GENERALIZATIONS:
        raise RuleFileError(f"rule {n}: generalize needs to: {' or '.join(sorted(GENERALIZATIONS))}")
    if method == "substitute" and "value" not in params:
        raise RuleFileError(f"rule {n}: substitute needs a value")
    if method == "keepExtension":
        _check_keep_extension(n, path, params)
    if method == "keepCoding":
        _check_keep_coding(n, path, params, code_systems or {})
    if "valueSet" in params and params["valueSet"] not in (value_sets or {}):
        raise RuleFileError(f"rule {n}: unknown value set name")
    if "pattern" in params and params["pattern"] not in patterns:
        raise RuleFileError(f"rule {n}: unknown pattern name")
    if params.get("invalid", "drop") not in ("drop", "reject"):
        raise RuleFileError(f"rule {n}: invalid must be drop or reject")
    if params.get("type", "number") != "number":
        raise RuleFileError(f"rule {n}: the only type constraint is number")
    if params.get("encoding", "utf-8") not in ("utf-8", "base64"):
        raise RuleFileError(f"rule {n}: encoding must be utf-8 or base64")
    return Rule(
        path=path, method=str(method), identifier=str(raw.get("identifier", "clinical")), params=params
    )


def _check_nesting(rules: tuple[Rule, ...]) -> None:
    """A rule inside another rule's path could never apply: the outer rule already decided the node."""
    paths = {r.path for r in rules}
    for r in rules:
        for cut in range(2, len(r.path)):
            if r.path[:cut] in paths:
                raise RuleFileError(f"rule {'.'.join(r.path)} lies inside rule {'.'.join(r.path[:cut])}")


def parse_rules(data: bytes) -> RuleSet:
    try:
        raw = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RuleFileError("the rule file is not valid JSON") from None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("rules"), list):
        raise RuleFileError("the rule file needs a list of rules")
    if not isinstance(raw.get("version"), str) or not raw["version"]:
        raise RuleFileError("the rule file needs a version")
    parameters = raw.get("parameters") or {}
    try:
        patterns = {k: re.compile(v) for k, v in (parameters.get("patterns") or {}).items()}
    except (re.error, TypeError):
        raise RuleFileError("parameters.patterns must map names to regular expressions") from None
    code_systems = _code_systems(parameters.get("codeSystems"))
    value_sets = _value_sets(parameters.get("valueSets"))
    if parameters.get("datesAtAgeCap", "redact") not in DATES_AT_AGE_CAP:
        raise RuleFileError(f"parameters.datesAtAgeCap must be one of {', '.join(sorted(DATES_AT_AGE_CAP))}")
    rules = tuple(_rule(n, r, patterns, code_systems, value_sets) for n, r in enumerate(raw["rules"], 1))
    _check_nesting(rules)
    return RuleSet(
        name=str(raw.get("name", "")),
        version=raw["version"],
        sha256=hashlib.sha256(data).hexdigest(),
        resource_types=frozenset(raw.get("resourceTypes") or ()),
        rules=rules,
        parameters=parameters,
        patterns=patterns,
        code_systems=code_systems,
        value_sets=value_sets,
    )


def load_rules(path: Path | None = None) -> RuleSet:
    """The rule file at `path`, or the packaged default."""
    if path is None:
        return default_rules()
    return parse_rules(path.read_bytes())


_DEFAULT: RuleSet | None = None


def default_rules() -> RuleSet:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = parse_rules(resources.files("privacy.deid").joinpath("rules", DEFAULT_RULES).read_bytes())
    return _DEFAULT
