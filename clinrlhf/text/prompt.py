"""The policy's language: a de-identified summary of the findings that matter, then a prescription.

Prompt:   ``sex female age 70-74 ; problems hypertension diabetes ; allergies none ;
            labs egfr low potassium normal ; treat hypertension ->``
Response: ``lisinopril 10 mg by mouth once daily``

Only world findings appear, ages are 5-year bands (90+ at the top) and labs are flags, so a prompt
never carries an identifier, whatever the source record held.
"""

from __future__ import annotations

from clinrlhf.formulary import Formulary, load_formulary
from clinrlhf.world.facts import AGE_CAP, PatientFacts
from clinrlhf.world.scoring import EGFR_LIMIT, POTASSIUM_LIMIT
from clinrlhf.world.world import World

PROMPT_END = "->"
_CONDITION_FINDINGS = (
    "pregnant",
    "diabetes",
    "hypertension",
    "heart_failure",
    "stroke",
    "myocardial_infarction",
)


def age_band(age: int) -> str:
    if age >= AGE_CAP:
        return "90+"
    low = age // 5 * 5
    return f"{low}-{low + 4}"


def _lab_flag(world: World, facts: PatientFacts, finding: str, limit: float, high_is_bad: bool) -> str:
    values = [facts.labs[c] for c in world.finding_codes(finding) if c in facts.labs]
    if not values:
        return "unknown"
    flagged = values[0] > limit if high_is_bad else values[0] < limit
    return ("high" if high_is_bad else "low") if flagged else "normal"


def render_prompt(world: World, facts: PatientFacts, target: str) -> str:
    problems = [k for k in _CONDITION_FINDINGS if facts.conditions & set(world.findings[k].snomed)]
    others = [k for k, t in world.targets.items() if t.snomed in facts.conditions and k not in problems]
    allergies = [
        k
        for k, f in world.findings.items()
        if f.resource == "AllergyIntolerance" and facts.allergies & set(f.snomed)
    ]
    egfr = _lab_flag(world, facts, "egfr_lt_30", EGFR_LIMIT, high_is_bad=False)
    potassium = _lab_flag(world, facts, "potassium_gt_5", POTASSIUM_LIMIT, high_is_bad=True)
    return " ".join(
        [
            "sex",
            facts.sex,
            "age",
            age_band(facts.age),
            ";",
            "problems",
            *(problems + others or ["none"]),
            ";",
            "allergies",
            *(a.removesuffix("_allergy") for a in allergies or ["none"]),
            ";",
            "labs",
            "egfr",
            egfr,
            "potassium",
            potassium,
            ";",
            "treat",
            target,
            PROMPT_END,
        ]
    )


def render_response(world: World, drug: str) -> str:
    return f"{drug} {world.drugs[drug].sig}"


def parse_drug(world: World, response: str) -> str | None:
    """The drug a response names (its first word), or None when it names no formulary drug."""
    words = response.split()
    return words[0] if words and words[0] in world.drugs else None


def parse_target(world: World, prompt: str) -> str | None:
    """The target a prompt asks to treat (the word after "treat"), or None if it names none."""
    words = prompt.split()
    at = len(words) - 1 - words[::-1].index("treat") if "treat" in words else -1
    target = words[at + 1] if 0 <= at < len(words) - 1 else None
    return target if target in world.targets else None


def parse_prescription(
    world: World, prompt: str, response: str, formulary: Formulary | None = None
) -> str | None:
    """The drug of a response that can become a coded MedicationRequest for the prompt's problem: a
    drug the formulary dispenses, written with one of its formulary sigs, that the formulary says
    may treat the target (by RxCUI and SNOMED CT code). None for anything else, however it is
    spelled. The formulary (default: the packaged one) is data, not the guideline's tiers, so the
    check knows which drugs treat a condition, never which is right for the patient."""
    formulary = formulary or load_formulary()
    drug = parse_drug(world, response)
    target = parse_target(world, prompt)
    if drug is None or target is None:
        return None
    rxcui = world.drugs[drug].rxnorm
    if response.strip() not in {f"{drug} {sig}" for sig in formulary.sigs(rxcui)}:
        return None
    return drug if formulary.may_treat(rxcui, world.targets[target].snomed) else None


def prescriptions(
    world: World, prompt: str, formulary: Formulary | None = None, *, for_target: bool = True
) -> list[str]:
    """Every response `parse_prescription` accepts for the prompt: each drug the formulary says may
    treat its target, with each of its formulary sigs. With `for_target` false, every drug the
    formulary dispenses, whatever it treats (what PPO weighs with the validity check off)."""
    formulary = formulary or load_formulary()
    target = parse_target(world, prompt)
    if target is None:
        return []
    condition = world.targets[target].snomed
    return [
        f"{name} {sig}"
        for name, drug in sorted(world.drugs.items())
        if not for_target or formulary.may_treat(drug.rxnorm, condition)
        for sig in formulary.sigs(drug.rxnorm)
    ]


def vocabulary_corpus(world: World) -> list[str]:
    """Every word the language can use, so the tokenizer never meets an unknown word."""
    words = [
        "sex",
        "female",
        "male",
        "other",
        "unknown",
        "age",
        "90+",
        ";",
        "problems",
        "none",
        "allergies",
        "labs",
        "egfr",
        "potassium",
        "low",
        "high",
        "normal",
        "treat",
        PROMPT_END,
        "penicillin",
    ]
    words += [age_band(a) for a in range(0, 90, 5)]
    words += list(_CONDITION_FINDINGS) + list(world.targets)
    words += [render_response(world, d) for d in world.drugs]
    return words
