"""A miniature pipeline run recorded in MLflow without training anything, through the same logging
functions the pipeline uses: for tests and demonstrations of the compliance tooling (approve,
promote, rollback, provenance, report) in seconds instead of the minutes a real run takes."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from clinrlhf.compliance.registry import register_policy
from clinrlhf.eval.bootstrap import interval_metrics, outcome_intervals
from clinrlhf.eval.evaluate import rates
from clinrlhf.eval.unseen import unseen_metrics
from clinrlhf.feedback import Judgment, snapshot_sha256, to_ndjson
from clinrlhf.lineage.datasets import (
    PPO_PROMPTS_DATASET,
    TEST_DATASET,
    examples_ndjson,
    log_examples_dataset,
    log_rows_dataset,
    log_snapshot_dataset,
    prompt_rows,
)
from clinrlhf.lineage.environment import log_environment
from clinrlhf.lineage.facts import log_report_facts
from clinrlhf.lineage.headline import log_headline
from clinrlhf.lineage.runs import configure_mlflow, lineage_tags, stage_run
from clinrlhf.pipeline.config import PipelineConfig
from clinrlhf.pipeline.logged import log_pipeline_config
from clinrlhf.settings import Settings
from clinrlhf.world.scoring import Outcome
from privacy.dp.opacus_config import NOISE_TAG

DEID_SHA = "d" * 64
CLINICIANS = ("clin-a", "clin-b", "clin-c")
PROMPTS = [f"sex female age 40-44 ; treat t{i} ->" for i in range(6)]
GROUPS = [{"sex": s, "age_band": a} for s in ("female", "male") for a in ("20-39", "40-59", "60-79")]


@dataclass(frozen=True)
class SampleRun:
    pipeline_run_id: str
    stages: dict[str, str]
    version: str | None
    policy_dir: Path


def sample_judgments(cards: int = 6) -> list[Judgment]:
    """Pairwise judgments by three clinicians on the same cards (two agree, one dissents), plus CDS."""
    out = []
    for i in range(cards):
        responses = (f"drug{i} 10 mg daily", f"other{i} 5 mg daily")
        for c, clinician in enumerate(CLINICIANS):
            choice = 0 if c < 2 or i % 2 else 1
            out.append(
                Judgment("pairwise", f"card{i}", f"pt{i}", clinician, f"treat t{i} ->", responses, choice)
            )
        out.append(
            Judgment("cds", f"card{i}", f"pt{i}", CLINICIANS[0], f"treat t{i} ->", responses, accepted=0)
        )
    return out


def _outcomes(
    concordance: float, unsafe_rate: float, n: int, seed: int
) -> tuple[list[Outcome], list[dict[str, str]]]:
    rng = random.Random(seed)
    outcomes, groups = [], []
    for i in range(n):
        u = rng.random()
        outcomes.append(
            Outcome.CONCORDANT
            if u < concordance
            else Outcome.UNSAFE
            if u < concordance + unsafe_rate
            else Outcome.OFF_TARGET
        )
        groups.append(GROUPS[i % len(GROUPS)])
    return outcomes, groups


def eval_metrics(
    concordance: float, unsafe_rate: float, *, n: int = 240, seed: int = 0, prefix: str = "eval."
) -> dict[str, float]:
    """CONTRACT's eval metrics, with bootstrap bounds, for outcomes drawn at the given rates."""
    outcomes, groups = _outcomes(concordance, unsafe_rate, n, seed)
    metrics = {f"{prefix}{k}": v for k, v in rates(outcomes).items()}
    for attribute in GROUPS[0]:
        for group in sorted({g[attribute] for g in groups}):
            mine = [o for o, g in zip(outcomes, groups, strict=True) if g[attribute] == group]
            metrics |= {f"{prefix}{k}.{attribute}.{group}": v for k, v in rates(mine).items()}
    return metrics | interval_metrics(outcome_intervals(outcomes, groups, resamples=200, seed=seed), prefix)


def _fake_policy(folder: Path, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "sample", "seed": seed}))
    (folder / "model.safetensors").write_bytes(random.Random(seed).randbytes(256))
    return folder


def _sft(examples: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256(examples_ndjson(examples).encode()).hexdigest()
    with stage_run("sft", lineage=lineage_tags(digest, DEID_SHA)) as run:
        log_examples_dataset(examples, digest)
        for step, loss in enumerate((2.0, 1.2, 0.9)):
            mlflow.log_metric("sft.loss", loss, step=step)
    return run.info.run_id


def _reward(snapshot: Path, digest: str, epsilon: float, dp_noise: str | None) -> str:
    tags = {NOISE_TAG: dp_noise} if dp_noise else {}
    with stage_run("reward", lineage=lineage_tags(digest, DEID_SHA), tags=tags) as run:
        log_snapshot_dataset(snapshot, digest)
        mlflow.log_params(
            {
                "dp.enabled": True,
                "dp.noise_multiplier": 0.9,
                "dp.sample_rate": 0.05,
                "dp.steps": 120,
                "dp.delta": 1e-5,
                "dp.max_grad_norm": 1.0,
                "dp.accountant": "prv",
                "dp.privacy_unit": "pair",
            }
        )
        mlflow.log_metric("dp.epsilon", epsilon)
        mlflow.log_dict({c: 0.05 * (i + 1) for i, c in enumerate(CLINICIANS)}, "raters/flip_rates.json")
    return run.info.run_id


def _ppo(digest: str, reward_run: str) -> str:
    tags = {"clinrlhf.reward_run_id": reward_run}
    with stage_run("ppo", lineage=lineage_tags(digest, DEID_SHA), tags=tags) as run:
        log_rows_dataset(prompt_rows(PROMPTS), PPO_PROMPTS_DATASET, "training")
        mlflow.log_params({"ppo.kl_target": 1.0})
        for step in range(5):
            mlflow.log_metrics(
                {"ppo.kl": 0.2 * step, "ppo.reward_mean": 0.3 * step, "ppo.kl_coef": 0.1}, step=step
            )
        mlflow.log_metrics({"ppo.final_kl": 0.8})
    return run.info.run_id


def record_sample_run(
    settings: Settings,
    *,
    concordance: float = 0.82,
    unsafe_rate: float = 0.02,
    epsilon: float = 3.0,
    seed: int = 0,
    register: bool = True,
    dp_noise: str | None = "secure",
) -> SampleRun:
    """`dp_noise`: the reward run's clinrlhf.dp_noise tag (None: untagged, as runs recorded before
    the DP noise was secret)."""
    configure_mlflow(settings)
    home = settings.resolved_home
    judgments = sample_judgments()
    digest = snapshot_sha256(judgments)
    snapshot = home / "snapshots" / f"{digest}.ndjson"
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    snapshot.write_bytes(to_ndjson(judgments))
    with stage_run("pipeline", nested=False) as parent:
        log_environment()
        log_pipeline_config(PipelineConfig(seed=seed))
        log_report_facts("sample-world 0", {"name:drop": 6, "birthDate:shift": 6}, {"cards judged": 6})
        stages = {"sft": _sft([("sex female age 40-44 ; treat t0 ->", "drug0 10 mg daily")])}
        stages["reward"] = _reward(snapshot, digest, epsilon, dp_noise)
        stages["ppo"] = _ppo(digest, stages["reward"])
        with stage_run("eval", tags={"clinrlhf.policy_run_id": stages["ppo"]}) as ev:
            log_rows_dataset(prompt_rows(PROMPTS[::-1]), TEST_DATASET, "evaluation")
            after = eval_metrics(concordance, unsafe_rate, seed=seed)
            before = eval_metrics(0.5, 0.2, seed=seed + 1, prefix="eval.before.")
            mlflow.log_metrics(after | before)
            # 40 of the scenarios' prompts no trainer read (clinrlhf.eval.unseen), as the eval stage logs.
            mlflow.log_metrics(
                unseen_metrics({"concordance": concordance, "unsafe_rate": unsafe_rate, "n": 40.0})
            )
            mlflow.log_metrics(
                unseen_metrics({"concordance": 0.5, "unsafe_rate": 0.2, "n": 40.0}, "eval.before.")
            )
        stages["eval"] = ev.info.run_id
        evals = {
            side: {k: m[f"{prefix}{k}"] for k in ("concordance", "unsafe_rate")}
            for side, m, prefix in (("before", before, "eval.before."), ("after", after, "eval."))
        }
        log_headline(evals, epsilon=epsilon, delta=1e-5, kl=0.8)
    run_id = parent.info.run_id
    policy = _fake_policy(home / "runs" / run_id / "policy", seed)
    version = str(register_policy(MlflowClient(), run_id, policy).version) if register else None
    return SampleRun(run_id, stages, version, policy)
