"""One knob, the pipeline seed, varies the cohorts, the panel, SFT, the reward model and PPO together;
each stage's own seed still wins where it is set."""

from __future__ import annotations

import json
from pathlib import Path

from clinrlhf.pipeline.config import STAGE_SEEDS, PipelineConfig, load_pipeline_config, with_stage_seeds
from clinrlhf.pipeline.seeds import SEED_BITS, derive_seed
from clinrlhf.ppo.config import PPOConfig


def _stage_seeds(config: PipelineConfig) -> dict[str, int | None]:
    return {name: getattr(config, name).seed for name in STAGE_SEEDS}


def test_derived_seeds_are_fixed_per_stream_and_differ_between_streams_and_runs() -> None:
    assert derive_seed(4, "ppo") == derive_seed(4, "ppo")
    seeds = {derive_seed(run, stream) for run in range(20) for stream in (*STAGE_SEEDS, "cohort.test")}
    assert len(seeds) == 20 * 5 and all(0 <= s < 2**SEED_BITS for s in seeds)


def test_the_pipeline_seed_sets_every_stage_seed_it_is_not_told() -> None:
    assert set(STAGE_SEEDS) == {"panel", "sft", "reward", "ppo"}
    assert set(_stage_seeds(PipelineConfig()).values()) == {None}  # left to the pipeline seed
    zero, one = with_stage_seeds(PipelineConfig(seed=0)), with_stage_seeds(PipelineConfig(seed=1))
    assert _stage_seeds(zero) == {name: derive_seed(0, name) for name in STAGE_SEEDS}
    assert all(_stage_seeds(zero)[n] != _stage_seeds(one)[n] for n in STAGE_SEEDS)
    assert with_stage_seeds(zero) == zero  # resolving twice changes nothing


def test_a_stage_seed_set_alone_is_kept() -> None:
    config = with_stage_seeds(PipelineConfig(seed=1, ppo=PPOConfig(seed=7)))
    assert config.ppo.seed == 7 and config.sft.seed == derive_seed(1, "sft")


def test_a_config_file_and_the_seed_flag_resolve_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"seed": 2, "sft": {"seed": 5}}))
    from_file = load_pipeline_config(path)
    assert from_file.sft.seed == 5 and from_file.reward.seed == derive_seed(2, "reward")
    flagged = load_pipeline_config(path, seed=3)  # `clinrlhf pipeline --config F --seed 3`
    assert flagged.sft.seed == 5 and flagged.panel.seed == derive_seed(3, "panel")
    assert flagged.ppo.seed == derive_seed(3, "ppo") != from_file.ppo.seed
