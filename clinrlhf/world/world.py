"""Typed loader for ``world.json`` (shipped as package data)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class Drug:
    key: str
    rxnorm: str
    drug_class: str
    sig: str
    display: str  # the name a clinician reads: world.json's keys are tokens (insulin_glargine)


@dataclass(frozen=True)
class Tier:
    when: tuple[str, ...]
    drugs: tuple[str, ...]


@dataclass(frozen=True)
class Target:
    key: str
    snomed: str
    display: str
    tiers: tuple[Tier, ...]
    never_with: tuple[str, ...] = ()

    @property
    def drugs(self) -> tuple[str, ...]:
        """Every drug named in any tier: the drugs the guideline prescribes for this target. What may
        treat it at all (the validity check) is the formulary's to say (clinrlhf.formulary)."""
        seen: dict[str, None] = {}
        for tier in self.tiers:
            seen.update(dict.fromkeys(tier.drugs))
        return tuple(seen)


@dataclass(frozen=True)
class Finding:
    key: str
    resource: str | None
    snomed: tuple[str, ...] = ()
    loinc: tuple[str, ...] = ()
    display: str = ""


@dataclass(frozen=True)
class World:
    name: str
    version: str
    systems: dict[str, str]
    drugs: dict[str, Drug]
    findings: dict[str, Finding]
    contraindicated: dict[str, tuple[str, ...]]
    targets: dict[str, Target]
    sha256: str

    def drug_by_rxnorm(self, code: str) -> Drug | None:
        return next((d for d in self.drugs.values() if d.rxnorm == code), None)

    def target_by_snomed(self, code: str) -> Target | None:
        return next((t for t in self.targets.values() if t.snomed == code), None)

    def finding_codes(self, key: str) -> tuple[str, ...]:
        finding = self.findings[key]
        return finding.snomed or finding.loinc


def _parse(raw: dict, sha256: str) -> World:
    # The benchmark world names no displays: its keys are generic names written as tokens.
    drugs = {
        k: Drug(k, v["rxnorm"], v["class"], v["sig"], v.get("display", k.replace("_", " ")))
        for k, v in raw["drugs"].items()
    }
    findings = {
        k: Finding(
            k, v.get("resource"), tuple(v.get("snomed", ())), tuple(v.get("loinc", ())), v.get("display", k)
        )
        for k, v in raw["findings"].items()
    }
    targets = {
        k: Target(
            key=k,
            snomed=v["snomed"],
            display=v["display"],
            tiers=tuple(Tier(tuple(t["when"]), tuple(t["drugs"])) for t in v["tiers"]),
            never_with=tuple(v.get("never_with", ())),
        )
        for k, v in raw["targets"].items()
    }
    return World(
        name=raw["name"],
        version=raw["version"],
        systems=dict(raw["systems"]),
        drugs=drugs,
        findings=findings,
        contraindicated={k: tuple(v) for k, v in raw["contraindicated"].items()},
        targets=targets,
        sha256=sha256,
    )


@cache
def load_world(path: str | None = None) -> World:
    """Load a world file; the packaged ``world.json`` by default."""
    data = (
        Path(path).read_bytes()
        if path
        else resources.files("clinrlhf.world").joinpath("world.json").read_bytes()
    )
    return _parse(json.loads(data), hashlib.sha256(data).hexdigest())
