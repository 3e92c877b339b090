"""The codes the world knows, and facts narrowed to them before they are stored.

De-identification (`privacy.deid`) keeps a SNOMED CT, LOINC or RxNorm code when it has that code
system's shape, check digit included; a shape also admits numbers nobody assigned, so an identifier
that happens to fit one could pass. The stored facts need no code the world does not know: its rules,
the policy's prompt and the reward read only the world's codes. So a case keeps those and drops the
rest, and an identifier would have to equal one of the world's own codes to reach the store.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from clinrlhf.world.facts import PatientFacts
from clinrlhf.world.world import World


@dataclass(frozen=True)
class KnownCodes:
    snomed: frozenset[str]  # conditions and allergies: every finding's and target's SNOMED CT code
    loinc: frozenset[str]  # labs
    rxnorm: frozenset[str]  # medications


def known_codes(world: World) -> KnownCodes:
    return KnownCodes(
        snomed=frozenset(c for f in world.findings.values() for c in f.snomed)
        | frozenset(t.snomed for t in world.targets.values()),
        loinc=frozenset(c for f in world.findings.values() for c in f.loinc),
        rxnorm=frozenset(d.rxnorm for d in world.drugs.values()),
    )


def known_facts(facts: PatientFacts, world: World) -> PatientFacts:
    """`facts` with only the codes `world` knows (age, sex, race and ethnicity are unchanged)."""
    known = known_codes(world)
    return replace(
        facts,
        conditions=facts.conditions & known.snomed,
        allergies=facts.allergies & known.snomed,
        labs={code: value for code, value in facts.labs.items() if code in known.loinc},
        medications=facts.medications & known.rxnorm,
    )
