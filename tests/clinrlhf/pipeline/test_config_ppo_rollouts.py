"""The loop's PPO weighs the formulary's prescriptions; a config a run logged before that option
existed still reads as the sampled PPO it ran, while a user's partial override keeps the default."""

from __future__ import annotations

import dataclasses

from clinrlhf.pipeline.config import PipelineConfig, pipeline_config_from
from clinrlhf.ppo import PPOConfig


def test_the_loop_weighs_the_formulary_and_a_bare_ppo_config_samples() -> None:
    assert PipelineConfig().ppo.rollouts == "formulary"
    assert PPOConfig().rollouts == "sampled"


def test_a_run_logged_before_formulary_rollouts_reads_as_the_sampled_ppo_it_ran() -> None:
    logged = dataclasses.asdict(PipelineConfig())
    logged["ppo"] = {k: v for k, v in dataclasses.asdict(PPOConfig()).items() if k != "rollouts"}
    old = pipeline_config_from(logged).ppo
    assert old == PPOConfig()  # sampled, 120 iterations, 2 mini-batches, 4 epochs: what it ran
    assert pipeline_config_from({"ppo": {"kl_target": 1.5}}).ppo == dataclasses.replace(
        PipelineConfig().ppo, kl_target=1.5
    )
