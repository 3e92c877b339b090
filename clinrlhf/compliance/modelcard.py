"""A model card in the nine sections of Mitchell et al. (2019), "Model Cards for Model Reporting",
FAT* '19, https://doi.org/10.1145/3287560.3287596, filled from what MLflow recorded for the run."""

from __future__ import annotations

from dataclasses import dataclass

from clinrlhf.compliance.evidence import Evidence
from clinrlhf.compliance.report_privacy import noise_line

INTENDED_USE = (
    "Drafts a first-line prescription (drug, dose, route, frequency) for one target problem of an adult or "
    "paediatric outpatient, shown to a clinician as a CDS Hooks card to accept or override. Research and "
    "evaluation of feedback-driven alignment on a synthetic prescribing world."
)
OUT_OF_SCOPE = (
    "Not clinical guidance and not for autonomous prescribing. Not for inpatient, emergency or paediatric "
    "dosing beyond the world's formulary, nor for problems outside the world's targets. Trained and evaluated "
    "on synthetic patients only."
)


@dataclass(frozen=True)
class Section:
    title: str
    items: list[tuple[str, str]]


def _f(value: float, digits: int = 3) -> str:
    return "not recorded" if value != value else f"{value:.{digits}f}"


def _with_ci(rates_metrics: dict[str, float], metric: str) -> str:
    value = rates_metrics.get(metric, float("nan"))
    low, high = rates_metrics.get(f"{metric}_ci_low"), rates_metrics.get(f"{metric}_ci_high")
    ci = f" (95% CI {low:.3f}–{high:.3f})" if low is not None and high is not None else ""
    return f"{_f(value)}{ci}"


def _details(ev: Evidence) -> Section:
    versions = ", ".join(f"v{v.version}" for v in ev.versions) or "not registered"
    production = f"v{ev.production.version}" if ev.production else "none"
    return Section(
        "Model details",
        [
            ("Developer", "clinrlhf project (research software)"),
            (
                "Model",
                "small causal transformer; supervised on historical practice, aligned by KL-constrained PPO",
            ),
            ("Registered versions of this run", f"clinrlhf-policy {versions}; in production: {production}"),
            ("Trained", f"{ev.chain.pipeline.data.tags.get('mlflow.user', '?')}, run {ev.run_id}"),
            ("Code", f"commit {ev.tag('pipeline', 'mlflow.source.git.commit')}"),
            ("Environment", f"frozen requirements SHA-256 {ev.environment_sha256}"),
            ("Licence", "Apache-2.0"),
        ],
    )


def _training(ev: Evidence) -> Section:
    fb = ev.feedback
    judged = (
        f"{fb['judgments']} de-identified judgments by {fb['clinicians']} clinicians (pseudonyms) on {fb['cards']} cards"
        if fb
        else "snapshot file not found (MLflow holds its SHA-256; the file lives in CLINRLHF_HOME)"
    )
    privacy = "The reward model was trained WITHOUT differential privacy."
    if ev.guarantee:
        is_dp, noise = noise_line(ev)
        privacy = (
            f"{ev.guarantee.describe()} Conditional on the rater screening, the rater weights and the "
            "k-anonymity suppression (see Privacy spent)."
            if is_dp
            else noise
        )
    return Section(
        "Training data",
        [
            (
                "Supervised stage",
                f"historical-practice examples, SHA-256 {ev.tag('sft', 'clinrlhf.dataset_sha256')}",
            ),
            ("Reward model", f"{judged}; snapshot SHA-256 {ev.tag('reward', 'clinrlhf.dataset_sha256')}"),
            (
                "De-identification",
                f"at the door, configuration SHA-256 {ev.tag('reward', 'clinrlhf.deid_config_sha256')}",
            ),
            ("Privacy", privacy),
        ],
    )


# How the eval run groups patients (clinrlhf.eval.evaluate.subgroup_of), by attribute name.
_FACTORS = {
    "sex": "sex",
    "age_band": "age band (20-year bands, 90+)",
    "race": "race (US Core, OMB categories)",
    "ethnicity": "ethnicity (US Core, OMB categories)",
}


def _factors(ev: Evidence) -> Section:
    """The groups the eval run actually logged, so the card never claims an audit that did not run."""
    logged = ev.rates["after"].subgroups
    evaluated = [label for name, label in _FACTORS.items() if name in logged]
    missing = [name.replace("_", " ") for name in _FACTORS if name not in logged]
    return Section(
        "Factors",
        [
            ("Groups evaluated", "; ".join(evaluated) or "none logged"),
            (
                "Not evaluated",
                ", ".join([*missing, "language and social determinants"]) + ": not in the records evaluated",
            ),
        ],
    )


def model_card(ev: Evidence) -> list[Section]:
    after = ev.rates["after"].overall
    return [
        _details(ev),
        Section("Intended use", [("Primary use", INTENDED_USE), ("Out of scope", OUT_OF_SCOPE)]),
        _factors(ev),
        Section(
            "Metrics",
            [
                (
                    "Concordance",
                    "share of recommendations matching the guideline-preferred drug for the patient",
                ),
                (
                    "Unsafe rate",
                    "share of recommendations contraindicated for the patient (allergy, renal, potassium)",
                ),
                ("Uncertainty", "95% percentile bootstrap intervals over held-out scenarios, per group"),
            ],
        ),
        Section(
            "Evaluation data",
            [
                (
                    "Held-out patients",
                    f"{int(after.get('n', 0))} scenarios from patients never trained on (eval run {ev.run_id_of('eval')})",
                )
            ],
        ),
        _training(ev),
        Section(
            "Quantitative analyses",
            [
                ("Concordance (aligned)", _with_ci(after, "concordance")),
                ("Unsafe rate (aligned)", _with_ci(after, "unsafe_rate")),
                ("Concordance (supervised baseline)", _with_ci(ev.rates["before"].overall, "concordance")),
                ("By subgroup", "see Subgroup performance"),
                (
                    "Final KL to the supervised policy",
                    f"{_f(ev.kl)} nats per response (target {_f(ev.kl_target, 2)})",
                ),
            ],
        ),
        Section(
            "Ethical considerations",
            [
                (
                    "Clinician in the loop",
                    "every suggestion is a draft; the card says so and names the model version",
                ),
                (
                    "Feedback privacy",
                    "clinicians and patients appear only as keyed pseudonyms; the reward model is DP given "
                    "the screening, and what it does not cover is listed under Privacy spent",
                ),
                (
                    "Reward hacking",
                    "PPO is held near the supervised policy by a KL budget; unsafe rate is a gate",
                ),
            ],
        ),
        Section(
            "Caveats and recommendations",
            [
                ("Synthetic world", "performance on real patients is unknown until validated on local data"),
                (
                    "Small groups",
                    "groups with few held-out scenarios have wide intervals; read them, not the bars",
                ),
                ("Promotion", "production use needs passing acceptance criteria and a compliance approval"),
            ],
        ),
    ]
