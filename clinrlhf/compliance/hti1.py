"""Source attributes for a predictive decision support intervention, in the nine groups of the ONC
HTI-1 final rule (45 CFR 170.315(b)(11)(iv)(B), https://www.ecfr.gov/current/title-45/section-170.315),
each answered from the run's evidence or stated as not available."""

from __future__ import annotations

from dataclasses import dataclass

from clinrlhf.compliance.evalmetrics import max_gap
from clinrlhf.compliance.evidence import Evidence
from clinrlhf.compliance.modelcard import INTENDED_USE, OUT_OF_SCOPE

NOT_DONE = "Not performed: the model has been evaluated on synthetic data from the training source only."


@dataclass(frozen=True)
class AttributeGroup:
    title: str
    attributes: list[tuple[str, str]]


def _representation(ev: Evidence) -> str:
    parts = []
    after = ev.rates["after"]
    total = after.get("n", 0.0) or 1.0
    for attribute, group, values in after.groups():
        parts.append(f"{attribute} {group}: {values.get('n', 0) / total:.0%}")
    return "Held-out cohort: " + ", ".join(parts) if parts else "not recorded"


def _fairness(ev: Evidence) -> str:
    gaps = []
    for metric in ("concordance", "unsafe_rate"):
        found = max_gap(ev.rates["after"], metric, 30)
        if found:
            gaps.append(f"largest {metric.replace('_', ' ')} gap {found[0]:.3f} ({found[1]})")
    return "; ".join(gaps) + " (groups with n ≥ 30)" if gaps else "not recorded"


def _validity(ev: Evidence) -> str:
    after = ev.rates["after"].overall
    return (
        f"concordance {after.get('concordance', float('nan')):.3f}, unsafe rate "
        f"{after.get('unsafe_rate', float('nan')):.3f} on {int(after.get('n', 0))} held-out scenarios"
    )


def source_attributes(ev: Evidence) -> list[AttributeGroup]:
    return [
        AttributeGroup(
            "Details and output of the intervention",
            [
                ("Developer and contact", "clinrlhf project maintainers (see README)"),
                ("Funding source", "not applicable: research software"),
                (
                    "Output",
                    "a drafted prescription (drug, dose, route, frequency) as a CDS Hooks card with a FHIR MedicationRequest",
                ),
                ("Output type", "recommendation"),
            ],
        ),
        AttributeGroup(
            "Purpose of the intervention",
            [
                ("Intended use", INTENDED_USE),
                ("Intended patient population", "outpatients with a target problem in the world's formulary"),
                ("Intended users", "prescribing clinicians"),
                (
                    "Decision-making role",
                    "informs: the clinician accepts, edits or overrides every suggestion",
                ),
            ],
        ),
        AttributeGroup(
            "Cautioned out-of-scope use",
            [
                ("Out-of-scope tasks, situations, populations", OUT_OF_SCOPE),
                (
                    "Known risks and limitations",
                    "may recommend a contraindicated drug (see unsafe rate); trained on synthetic data",
                ),
            ],
        ),
        AttributeGroup(
            "Intervention development details and input features",
            [
                (
                    "Inclusion and exclusion criteria",
                    "synthetic patients with at least one target problem; no exclusions",
                ),
                (
                    "Demographic variables used as input",
                    "sex; age as a 5-year band (from date of birth). Not used: race, ethnicity, language, sexual orientation, gender identity, social determinants",
                ),
                ("Demographic representativeness", _representation(ev)),
                (
                    "Relevance of training data to deployment",
                    "synthetic; local validation is needed before clinical use",
                ),
            ],
        ),
        AttributeGroup(
            "Process used to ensure fairness in development",
            [
                (
                    "Approach to fair output",
                    "subgroup concordance and unsafe rate with bootstrap intervals are gated at promotion (maximum gap)",
                ),
                (
                    "Managing bias",
                    "rater reliability is learned per clinician so that no single rater sets the reward; KL budget keeps the policy near practice",
                ),
            ],
        ),
        AttributeGroup(
            "External validation process",
            [
                ("External data source and setting", NOT_DONE),
                ("Party that tested", NOT_DONE),
                ("External demographic representativeness", NOT_DONE),
                ("Validation process", NOT_DONE),
            ],
        ),
        AttributeGroup(
            "Quantitative measures of performance",
            [
                ("Validity, same-source test data", _validity(ev)),
                ("Fairness, same-source test data", _fairness(ev)),
                ("Validity, external data", NOT_DONE),
                ("Fairness, external data", NOT_DONE),
                ("Evaluations of outcomes", "none"),
            ],
        ),
        AttributeGroup(
            "Ongoing maintenance of implementation and use",
            [
                ("Validity in local data", "to be measured by the deploying site from CDS feedback"),
                ("Fairness in local data", "to be measured by the deploying site from CDS feedback"),
                ("Monitoring", "accept and override rates per model version from CDS Hooks feedback"),
            ],
        ),
        AttributeGroup(
            "Update and continued validation or fairness assessment schedule",
            [
                (
                    "Update schedule",
                    "retrained when new feedback is collected; each version needs approval and passing criteria",
                ),
                (
                    "Continued validation schedule",
                    "every retraining is evaluated on held-out patients, overall and by group",
                ),
            ],
        ),
    ]
