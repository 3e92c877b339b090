"""A CHAI Applied Model Card (Coalition for Health AI, draft v0.2, https://mc.chai.org, schema
https://github.com/coalition-for-health-ai/mc-schema) for one promoted version, filled from what
MLflow recorded for its run and from the project's fixed statements of intended use. Nothing is
invented: an element with no source in this deployment says so.

Pure: it reads the version's Evidence and the promotion's governance record; JSON-ready output."""

from __future__ import annotations

import math
from typing import Any

from mlflow.entities.model_registry import ModelVersion

from clinrlhf.compliance.criteria import AcceptanceCriteria, CriterionResult, check_criteria
from clinrlhf.compliance.evidence import Evidence
from clinrlhf.compliance.modelcard import INTENDED_USE, OUT_OF_SCOPE

SCHEMA = "CHAI Applied Model Card, draft v0.2 (https://mc.chai.org/v0.2/schema.xsd)"
NO_SOURCE = "not recorded: no source for this element in this deployment"
TEST_TYPE = "retrospective evaluation on held-out synthetic patients never trained on"


def _value(x: float) -> str:
    return "not recorded" if not math.isfinite(x) else f"{x:.3f}"


def _with_ci(values: dict[str, float], metric: str) -> str:
    low, high = values.get(f"{metric}_ci_low"), values.get(f"{metric}_ci_high")
    ci = f" (95% CI {low:.3f}–{high:.3f})" if low is not None and high is not None else ""
    return _value(values.get(metric, math.nan)) + ci


def _verdict(results: list[CriterionResult], prefix: str) -> str:
    mine = [r for r in results if r.name.startswith(prefix)]
    return "; ".join(
        f"{r.name} {r.measured}, required {r.required}: {'pass' if r.passed else 'FAIL'}" for r in mine
    )


def _development_data(ev: Evidence) -> str:
    fb = ev.feedback
    judged = (
        f"{fb['judgments']} de-identified judgments by {fb['clinicians']} clinicians on {fb['cards']} cards"
        if fb
        else "feedback counts not available here (MLflow holds the snapshot's SHA-256 only)"
    )
    return (
        f"Synthetic patients of world {ev.facts.get('world', 'not recorded')}; {judged}; feedback snapshot "
        f"SHA-256 {ev.tag('reward', 'clinrlhf.dataset_sha256')}; held-out evaluation of "
        f"{int(ev.rates['after'].get('n', 0) or 0)} scenarios (eval run {ev.run_id_of('eval')})."
    )


def _subgroups(ev: Evidence) -> list[dict[str, Any]]:
    return [
        {
            "label": f"{attribute}={group} (n={int(values.get('n', 0))})",
            "concordance": _with_ci(values, "concordance"),
            "unsafe rate": _with_ci(values, "unsafe_rate"),
        }
        for attribute, group, values in ev.rates["after"].groups()
    ]


def _security(ev: Evidence) -> str:
    dp = (
        f"reward model trained with differential privacy, ε = {ev.epsilon:.3f} at δ = {ev.dp_params.get('dp.delta', '?')} "
        f"per {ev.dp_params.get('dp.privacy_unit', '?')}"
        if math.isfinite(ev.epsilon)
        else "reward model trained without differential privacy"
    )
    return (
        "Records are de-identified at the door (configuration SHA-256 "
        f"{ev.tag('reward', 'clinrlhf.deid_config_sha256')}); {dp}; every governance action is an event in a "
        "hash-chained audit trail."
    )


def chai_card(
    mv: ModelVersion, ev: Evidence, criteria: AcceptanceCriteria, decision: dict[str, Any]
) -> dict[str, Any]:
    """The card as {section: {element: value}}, in the schema's order."""
    after = ev.rates["after"].overall
    results = check_criteria(criteria, ev.rates["after"], ev.epsilon)
    metric_source = f"eval run {ev.run_id_of('eval')}; acceptance criteria checked at promotion"
    return {
        "schema": SCHEMA,
        "BasicInfo": {
            "ModelName": mv.name,
            "ModelDeveloper": "clinrlhf project (research software)",
            "DeveloperContact": "clinrlhf project maintainers (see README)",
        },
        "ReleaseInfo": {
            "ReleaseStage": f"promoted to production in this deployment by {decision.get('name', '?')} "
            f"({decision.get('role', '?')})",
            "ReleaseDate": str(decision.get("time", "not recorded")),
            "ReleaseVersion": f"{mv.name} v{mv.version} (MLflow run {mv.run_id}, pipeline run {ev.run_id})",
            "GlobalAvailability": NO_SOURCE,
            "RegulatoryApproval": NO_SOURCE,
        },
        "ModelSummary": {"Summary": INTENDED_USE, "Keywords": NO_SOURCE},
        "UsesAndDirections": {
            "IntendedUseAndWorkflow": INTENDED_USE,
            "PrimaryIntendedUsers": "prescribing clinicians",
            "HowToUse": "Each suggestion is a CDS Hooks card naming the model version; the clinician accepts, "
            "edits or overrides it.",
            "TargetedPatientPopulation": "outpatients with a target problem in the world's formulary",
            "CautionedOutOfScopeSettings": OUT_OF_SCOPE,
        },
        "Warnings": {
            "KnownRisksAndLimitations": f"May recommend a contraindicated drug: held-out unsafe rate "
            f"{_with_ci(after, 'unsafe_rate')}. Trained and evaluated on synthetic patients only.",
            "KnownBiasesOrEthicalConsiderations": _verdict(results, "subgroup gap") or NO_SOURCE,
            "ClinicalRiskLevel": NO_SOURCE,
        },
        "TrustIngredients": {
            "AISystemFacts": {
                "OutcomesAndOutputs": "a drafted prescription (drug, dose, route, frequency) as a CDS Hooks "
                "card with a FHIR MedicationRequest",
                "ModelType": "small causal transformer; supervised on historical practice, aligned by "
                "KL-constrained PPO against a reward model learned from clinician feedback",
                "InputDataSource": "de-identified FHIR R4 records summarised into the policy's prompt; "
                "demographic inputs: sex and age band (race and ethnicity are not inputs)",
                "OutputAndInputDataTypes": "input: a patient summary prompt; output: one prescription line",
                "DevelopmentDataCharacterization": _development_data(ev),
                "BiasMitigationApproaches": "subgroup concordance and unsafe rate are gated at promotion "
                "(largest gap between groups); per-clinician reliability is learned so no single rater sets "
                "the reward",
                "OngoingMaintenance": "retrained when new feedback is collected; every version is evaluated "
                "on held-out patients, approved by the compliance role and promoted with a change record",
                "Security": _security(ev),
                "Transparency": "model card (Mitchell et al. 2019), ONC HTI-1 source attributes, change record "
                "and compliance report per run",
            },
            "TransparencyInformation": {
                "FundingSource": "not applicable: research software",
                "StakeholdersConsulted": NO_SOURCE,
            },
        },
        "KeyMetrics": {
            "UsefulnessUsabilityEfficacy": {
                "MetricGoal": "held-out concordance with the guideline-preferred drug",
                "Results": [{"label": "concordance", "value": _with_ci(after, "concordance")}],
                "Interpretation": _verdict(results, "concordance"),
                "TestType": TEST_TYPE,
                "TestingDataDescription": _development_data(ev),
                "ValidationProcessAndJustification": metric_source,
            },
            "FairnessEquity": {
                "MetricGoal": "concordance and unsafe rate per subgroup (sex, age band, race, ethnicity as "
                "logged), and the largest gap between groups of one attribute",
                "Results": _subgroups(ev),
                "Interpretation": _verdict(results, "subgroup gap") or NO_SOURCE,
                "TestType": TEST_TYPE,
                "TestingDataDescription": "the same held-out scenarios, grouped",
                "ValidationProcessAndJustification": metric_source,
            },
            "SafetyReliability": {
                "MetricGoal": "held-out share of recommendations contraindicated for the patient",
                "Results": [{"label": "unsafe rate", "value": _with_ci(after, "unsafe_rate")}],
                "Interpretation": _verdict(results, "unsafe rate"),
                "TestType": TEST_TYPE,
                "TestingDataDescription": _development_data(ev),
                "ValidationProcessAndJustification": metric_source,
            },
        },
        "Resources": {
            "EvaluationReferences": f"compliance report of pipeline run {ev.run_id} (`clinrlhf report {ev.run_id}`)",
            "PeerReviewedPublications": NO_SOURCE,
            "PatientConsentOrDisclosure": NO_SOURCE,
        },
    }
