"""Everything one run of the loop needs, with defaults that fit 10 minutes on 2 CPU cores."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, cast

from clinrlhf.feedback.screening import ScreeningConfig
from clinrlhf.feedback.steering import SteeringConfig
from clinrlhf.formulary import load_formulary
from clinrlhf.panel.session import PanelConfig
from clinrlhf.pipeline.cohorts import CohortSizes
from clinrlhf.pipeline.policy_reward import INVALID_PENALTY
from clinrlhf.pipeline.prompts import PROMPT_SOURCES
from clinrlhf.pipeline.seeds import derive_seed
from clinrlhf.policy.lora_config import LoRAConfig
from clinrlhf.policy.model import PolicyConfig
from clinrlhf.ppo.config import PPOConfig
from clinrlhf.reward.config import RewardConfig
from clinrlhf.sft.config import SFTConfig


@dataclass(frozen=True)
class PipelineConfig:
    history_patients: int = 3000
    """Patients in the historical-practice corpus the supervised policy imitates."""
    feedback_patients: int = 4000
    """Patients the service sees and the panel judges. Under DP the reward model's quality is set
    mostly by how many judgments it learns from at its ε: with 1,500 (about 7,200 pairs) the
    KL-regularised optimum of the reward reached 0.82 ± 0.05 concordance on validation over five
    seeds, with twice the feedback 0.88 ± 0.06; five whole pipelines at 4,000 (with the larger DP
    batches of `reward`) against 3,000: 0.860 ± 0.053 against 0.848 ± 0.051 on validation, the worst
    seed 0.795 against 0.764, every final KL within 1.24× its target (docs/results.md, "How the
    defaults were chosen"). The panel and reward training grow with it: the quickstart takes 559 s
    in all on 2 idle cores (469 s at 3,000), inside its 10 minutes with little to spare."""
    validation_patients: int = 800
    """Patients every tuning decision is made on (defaults, checkpoints, sweeps): never trained on,
    never reported. A run does not evaluate them itself (benchmarks/pipeline_seeds.py --cohort
    validation does, for tuning), which keeps the quickstart within its 10 minutes."""
    test_patients: int = 800
    """Patients the run reports on, once: never trained on and never used to decide anything.
    (Called `heldout_patients` before validation and test were separated; that key still loads.)"""
    seed: int = 0
    """The one knob of a run's randomness (`--seed`): which patients fall in each cohort, the
    historical practice, and every stage's seed not set alone (panel.seed, sft.seed, reward.seed,
    ppo.seed: None derives each from this one, clinrlhf.pipeline.seeds.derive_seed). The reward
    model's DP noise is never seeded (secret by design) unless reward.dp.reproducible_noise."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """The policy's architecture (a GPT-2 built from config)."""
    sft: SFTConfig = field(default_factory=SFTConfig)
    """Supervised fine-tuning on the historical-practice corpus."""
    panel: PanelConfig = field(default_factory=PanelConfig)
    """The simulated clinicians and EHR that give feedback through the service."""
    screening: ScreeningConfig = field(default_factory=ScreeningConfig)
    """The poisoning defence before reward training: rater reliability, outliers quarantined
    (`auto_quarantine`; false only flags them), one feedback source unless mixing is allowed."""
    reward: RewardConfig = field(
        default_factory=lambda: RewardConfig(
            rater_weighting="dawid-skene", units_per_batch=128, learning_rate=4e-3
        )
    )
    """Reward training; in the loop each clinician's labels are weighted by their Dawid–Skene
    accuracy on the judgments trained on (RewardConfig.rater_weighting; "none" turns it off). The
    loop's DP batches are twice RewardConfig's (128 judgments, learning rate 4e-3, scaled by √2 with
    the batch; `clinrlhf train reward` reads this config too): the noise over the run is about a fifth
    lower at the same ε and compute (computed at 3,000 feedback patients), and five pipelines chose it
    with 4,000 on validation (docs/results.md)."""
    ppo: PPOConfig = field(
        default_factory=lambda: PPOConfig(rollouts="formulary", steps=60, mini_batches=4, ppo_epochs=2)
    )
    """KL-constrained PPO against the supervised reference. In the loop each iteration weighs every
    formulary prescription for the prompt's problem instead of one sampled response (PPOConfig.rollouts):
    sampled PPO stalled at about half its reward's optimum, this reaches it (docs/results.md)."""
    ppo_prompts: str = "feedback"
    """Where PPO's prompts come from: "feedback" (the snapshot's, read in the clear) or "history"
    (the historical-practice corpus the supervised policy trained on, so the feedback reaches the
    policy only through the DP reward model; clinrlhf.pipeline.prompts)."""
    log_snapshot_file: bool = False
    """Also copy the feedback snapshot file into MLflow (under the reward run's `snapshot/`). Off: MLflow
    holds its SHA-256 and the file stays in CLINRLHF_HOME, so reading the tracking store does not
    read the judgments."""
    lora: LoRAConfig | None = None
    """LoRA adapters for PPO, e.g. {"rank": 16}: only they train, and the reference is the same base
    with them switched off (clinrlhf.policy.lora). None trains every weight of the policy."""
    formulary: str | None = None
    """The hospital's formulary file (JSON, clinrlhf.formulary): which drugs may treat which
    condition, with their sigs. PPO's validity check reads it. None: the packaged formulary."""
    validity_penalty: float = INVALID_PENALTY
    """Subtracted from PPO's reward for a response that is no valid prescription under the formulary
    (clinrlhf.pipeline.policy_reward); 0 turns the check off."""
    ppo_prompt_balance: float = 0.0
    """How far PPO's prompt draws are balanced across 20-year age bands: each band is drawn in
    proportion to its share of the prompts ** (1 - this); 0 as the prompts come, 1 equal shares
    (clinrlhf.pipeline.prompts.balance_by_age_band)."""

    def cohort_sizes(self, *, validation: bool = False) -> CohortSizes:
        """The patients per cohort a run draws; the validation cohort only when asked for."""
        return CohortSizes(
            self.history_patients,
            self.feedback_patients,
            self.validation_patients if validation else 0,
            self.test_patients,
        )

    @staticmethod
    def upgrade_settings(overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Configs written before validation and test were separated name the reported cohort
        `heldout_patients`: it was the cohort reported on, so it is read as `test_patients`."""
        out = dict(overrides)
        if "heldout_patients" in out:
            if "test_patients" in out:
                raise ValueError("heldout_patients is the old name of test_patients: give one of them")
            out["test_patients"] = out.pop("heldout_patients")
        return out

    def __post_init__(self) -> None:
        if self.ppo_prompts not in PROMPT_SOURCES:
            raise ValueError(
                f"ppo_prompts must be one of {', '.join(PROMPT_SOURCES)}, not {self.ppo_prompts!r}"
            )
        if self.validity_penalty < 0:
            raise ValueError(f"validity_penalty must be >= 0 (0 turns it off), not {self.validity_penalty}")
        if not 0.0 <= self.ppo_prompt_balance <= 1.0:
            raise ValueError(f"ppo_prompt_balance must be between 0 and 1, not {self.ppo_prompt_balance}")
        if self.formulary is not None:
            load_formulary(self.formulary)  # a malformed file is refused here, before any training


STAGE_SEEDS = ("panel", "sft", "reward", "ppo")
"""The sections whose `seed` the pipeline seed sets when it is None."""


def with_stage_seeds(config: PipelineConfig) -> PipelineConfig:
    """`config` with every stage seed left None derived from the pipeline seed, by stage name: what a
    run uses and logs, so a logged config reruns the same stages."""
    changes = {
        name: replace(section, seed=derive_seed(config.seed, name))
        for name in STAGE_SEEDS
        if (section := getattr(config, name)).seed is None
    }
    return replace(config, **changes)


# Sections that are off (None) by default: a JSON object switches them on with these defaults.
# Converting them here, not where they are used, refuses a misspelt key at load time, by name.
_OPTIONAL_SECTIONS: dict[str, type] = {"lora": LoRAConfig, "steering": SteeringConfig}


def _merge(obj: object, overrides: dict, where: str) -> object:
    upgrade = getattr(obj, "upgrade_settings", None)  # a section whose layout changed reads the old one
    if upgrade is not None:
        overrides = upgrade(overrides)
    known = {f.name: f for f in fields(obj)}  # type: ignore[arg-type]
    changes = {}
    for key, value in overrides.items():
        if key not in known:
            raise ValueError(f"unknown setting {where}{key}; known: {', '.join(sorted(known))}")
        current = getattr(obj, key)
        if current is None and key in _OPTIONAL_SECTIONS and isinstance(value, dict):
            current = _OPTIONAL_SECTIONS[key]()
        changes[key] = _merge(current, value, f"{where}{key}.") if is_dataclass(current) else value
    return replace(obj, **changes)  # type: ignore[type-var]


def pipeline_config_from(raw: dict) -> PipelineConfig:
    """Defaults, then (nested) overrides as JSON holds them: a file's, or a config MLflow logged."""
    return cast(PipelineConfig, _merge(PipelineConfig(), raw, ""))


def load_pipeline_config(path: Path | None, **overrides: object) -> PipelineConfig:
    """Defaults, then a JSON file of (nested) overrides, then keyword overrides; stage seeds left
    None are then derived from the resulting pipeline seed (with_stage_seeds)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8")) if path else {}
    except json.JSONDecodeError as err:  # the decoder's own words name a position, not the problem
        raise ValueError(
            f"{path} is not valid JSON ({err.msg}, line {err.lineno} column {err.colno})"
        ) from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not valid JSON (not UTF-8 text)") from None
    if not isinstance(raw, dict):
        raise ValueError("the config file must hold a JSON object")
    return with_stage_seeds(replace(pipeline_config_from(raw), **overrides))  # type: ignore[arg-type]
