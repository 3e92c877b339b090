"""PPO vs DPO vs RLAIF, side by side, on one finished run's data and privacy ledger.

    OMP_NUM_THREADS=1 python benchmarks/alignment_methods.py --home $CLINRLHF_HOME --out alignment.json
    OMP_NUM_THREADS=1 python benchmarks/alignment_methods.py --home /tmp/qs5 --quick   # smoke run

Given a CLINRLHF_HOME where `clinrlhf quickstart` or `clinrlhf pipeline` has finished, it takes that
run's supervised policy (runs/<id>/sft), its PPO-aligned policy (runs/<id>/policy), the de-identified
snapshot its reward model trained on (snapshots/<sha256>.ndjson) and its privacy ledger, and compares
alignment methods that all start from the same supervised policy and the same snapshot:

  SFT                 the supervised policy, the reference every other method starts from.
  PPO (pipeline)      the run's own policy: DP reward model on clinicians' pairs, then KL-PPO.
  DPO (DP, ε=8)       Direct Preference Optimization (clinrlhf.dpo) on the clinicians' pairs of the
                      reward stage's training patients (the same split by patient), DP-SGD per pair.
  DPO (non-private)   the same without clipping or noise: what DP costs DPO (never for real data).
  RLAIF + PPO         AI feedback: a guideline rubric (clinrlhf.rlaif) labels the same cards, one
                      label per card, source "ai" (never mixed with clinicians'); a reward model is
                      trained on those pairs exactly as the pipeline's reward stage trains one (same
                      RewardConfig and patient split, rater weighting "none": the rubric is one
                      rater; DP on), then PPO with the pipeline's PPOConfig and reward function.

Every policy is scored with greedy recommendations on the pipeline's own held-out patients (the
same cohort seed and date as the run, so SFT and PPO (pipeline) reproduce the run's eval), with 95%
percentile-bootstrap intervals (clinrlhf.eval.bootstrap) and a paired interval of the change in
concordance from SFT. KL(π‖SFT) is estimated the same way for every policy: responses sampled from
π on held-out prompts at PPO's temperature, summed per-token log π − log π_SFT (k1, unbiased), nats
per response; "PPO final KL" is PPO's own measurement on its training prompts.

Privacy. The home's ledger has usually spent about ε = 8 of its budget on this snapshot already, so
it would (rightly) refuse further DP runs. The ledger file is therefore COPIED into the work folder
and the copy, with an unlimited budget, is charged instead: the output lists the snapshot's composed
ε after each charge, i.e. what a hospital would spend running these methods on the same data. The
RLAIF reward model is charged to the same snapshot: its labels come from a rubric, but its prompts
are the same patients' records. The home (ledger, MLflow, models) is only read, never written.

Output: a Markdown table on stdout, JSON at --out (null ε means no finite guarantee), and in the
work folder the ledger copy, the rubric's judgments (their own snapshot, source "ai") and the new
policies. One thread. The full run takes about 7 minutes on one idle core (PPO for RLAIF about 3,
each DPO about 1, the RLAIF reward model about 1, evaluations and KL estimates about 1); --quick
trains on at most 512 pairs for an epoch and PPO for 2 steps (about 1.5 minutes; its numbers show
only that everything runs, not how the methods compare).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.dpo.config import DPOConfig
from clinrlhf.dpo.trainer import train_dpo
from clinrlhf.eval.bootstrap import bootstrap_rates, outcome_flags, outcome_intervals
from clinrlhf.eval.evaluate import Scenario, evaluate_policy, subgroup_of
from clinrlhf.feedback.judgment import CLINICIAN, Judgment, to_ndjson
from clinrlhf.feedback.screening import check_sources
from clinrlhf.pipeline.cohorts import make_cohorts
from clinrlhf.pipeline.cohorts import scenarios as scenarios_of
from clinrlhf.pipeline.config import PipelineConfig, load_pipeline_config
from clinrlhf.pipeline.policy_reward import prescription_reward
from clinrlhf.pipeline.single import read_snapshot
from clinrlhf.pipeline.stages import policy_and_reference
from clinrlhf.policy import load_policy, save_policy
from clinrlhf.policy.lora_config import LoRAConfig
from clinrlhf.ppo.config import PPOConfig
from clinrlhf.ppo.core import kl_k1
from clinrlhf.ppo.rollout import collect
from clinrlhf.ppo.trainer import KLCapExceeded, train_ppo
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.evaluate import (
    HELDOUT_FRACTION,
    fresh_scenarios,
    heldout_report,
    split_by_patient,
    utility_agreement,
)
from clinrlhf.reward.ledger import LEDGER_FILE, Budget, BudgetExceededError, PrivacyLedger
from clinrlhf.reward.pairs import PreferencePair, pairs_from_judgments
from clinrlhf.reward.trainer import train_reward
from clinrlhf.reward.units import count_units
from clinrlhf.rlaif.rubric import SOURCE as AI_SOURCE
from clinrlhf.rlaif.rubric import RubricConfig, label, preferred
from clinrlhf.settings import Settings
from clinrlhf.text.prompt import render_prompt
from clinrlhf.world.world import World, load_world
from privacy.dp.ledger import Mechanism, filter_epsilon
from privacy.dp.opacus_config import DPConfig

METHODS = ("sft", "ppo", "dpo-dp", "dpo", "rlaif")
NAMES = {
    "sft": "SFT",
    "ppo": "PPO (pipeline)",
    "dpo-dp": "DPO (DP, ε={eps:g})",
    "dpo": "DPO (non-private)",
    "rlaif": "RLAIF + PPO",
}
COPY_BUDGET_EPSILON = 1e9
"""The ledger copy's budget: large enough never to refuse, so every charge is recorded and composed."""
KL_SAMPLES = 1024
"""Responses sampled per policy for the held-out KL estimate (full mode)."""


# ----------------------------------------------------------------------------------------------
# Finding the run
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFiles:
    """Everything the benchmark reads from a finished home, and where each fact came from."""

    home: Path
    run_id: str
    sft: Path
    policy: Path
    snapshot: Path
    ledger: Path
    config: PipelineConfig
    config_source: str
    run_date: date
    date_source: str
    mlflow: dict[str, Any] = field(default_factory=dict)
    """Per stage ("sft", "reward", "ppo", "eval"): run_id, seconds, metrics, tags; empty without MLflow."""


def _mlflow_db(home: Path) -> sqlite3.Connection | None:
    """The home's MLflow store, read-only (sqlite3 directly: opening it through MLflow may migrate it)."""
    db = home / "mlflow.db"
    if not db.exists():
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        con.execute("select 1 from runs limit 1")
        return con
    except sqlite3.Error:
        return None


def _pipeline_runs(con: sqlite3.Connection) -> dict[str, int]:
    """Finished pipeline runs -> start time (ms since the epoch)."""
    rows = con.execute(
        "select r.run_uuid, r.start_time from runs r join tags t on t.run_uuid = r.run_uuid "
        "where t.key = 'clinrlhf.stage' and t.value = 'pipeline' and r.status = 'FINISHED'"
    ).fetchall()
    return {run: int(start) for run, start in rows}


def _stage_facts(con: sqlite3.Connection, parent: str) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    children = con.execute(
        "select r.run_uuid, r.start_time, r.end_time from runs r join tags t on t.run_uuid = r.run_uuid "
        "where t.key = 'mlflow.parentRunId' and t.value = ?",
        (parent,),
    ).fetchall()
    for run, start, end in children:
        tags = dict(con.execute("select key, value from tags where run_uuid = ?", (run,)).fetchall())
        metrics: dict[str, float] = {}
        for key, value in con.execute(
            "select key, value from metrics where run_uuid = ? order by step, timestamp", (run,)
        ):
            metrics[key] = float(value)  # the last value logged
        stage = tags.get("clinrlhf.stage", run)
        seconds = (end - start) / 1000 if start and end else None
        facts[stage] = {"run_id": run, "seconds": seconds, "metrics": metrics, "tags": tags}
    return facts


def _logged_config(con: sqlite3.Connection | None, run_id: str) -> tuple[PipelineConfig, str]:
    """The PipelineConfig the run logged (defaults for anything it did not log), else the defaults."""
    row = None
    if con is not None:
        row = con.execute(
            "select value from params where run_uuid = ? and key = 'pipeline.config'", (run_id,)
        ).fetchone()
    if row is None:
        return PipelineConfig(), "PipelineConfig() defaults (no config logged in MLflow)"
    raw = json.loads(row[0])
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(raw, f)
    try:
        return load_pipeline_config(Path(f.name)), "MLflow param pipeline.config of the run"
    except (ValueError, TypeError) as err:
        seed = int(raw.get("seed", 0))
        return PipelineConfig(
            seed=seed
        ), f"PipelineConfig(seed={seed}) defaults (logged config unreadable: {err})"
    finally:
        Path(f.name).unlink(missing_ok=True)


def _is_policy(path: Path) -> bool:
    return (path / "config.json").exists()


def locate_run(home: Path, run_id: str | None = None, run_date: date | None = None) -> RunFiles:
    """The run under `home` to compare against: `run_id`, or the newest finished one."""
    home = home.expanduser().resolve()
    candidates = {
        p.name: p
        for p in sorted((home / "runs").glob("*"))
        if _is_policy(p / "sft") and _is_policy(p / "policy")
    }
    if not candidates:
        raise SystemExit(
            f"{home}: no finished run (runs/<id>/sft and runs/<id>/policy); is it a pipeline home?"
        )
    con = _mlflow_db(home)
    started = _pipeline_runs(con) if con is not None else {}
    if run_id is not None:
        if run_id not in candidates:
            raise SystemExit(f"{home}: no finished run {run_id}; found {', '.join(sorted(candidates))}")
        chosen = run_id
    elif any(r in started for r in candidates):
        chosen = max((r for r in candidates if r in started), key=started.__getitem__)
    else:
        chosen = max(candidates, key=lambda r: (candidates[r] / "policy").stat().st_mtime)
    folder = candidates[chosen]
    config, config_source = _logged_config(con, chosen)
    stages = _stage_facts(con, chosen) if con is not None else {}
    if run_date is not None:
        when, date_source = run_date, "--run-date"
    elif chosen in started:
        # The pipeline draws its cohorts with date.today(): the local date at which it started.
        when, date_source = datetime.fromtimestamp(started[chosen] / 1000).date(), "MLflow start of the run"
    else:
        mtime = (folder / "sft" / "config.json").stat().st_mtime
        when, date_source = datetime.fromtimestamp(mtime).date(), "date of runs/<id>/sft (no MLflow)"
    snapshots = sorted((home / "snapshots").glob("*.ndjson"), key=lambda p: p.stat().st_mtime)
    digest = stages.get("reward", {}).get("tags", {}).get("clinrlhf.dataset_sha256")
    if digest and (home / "snapshots" / f"{digest}.ndjson").exists():
        snapshot = home / "snapshots" / f"{digest}.ndjson"
    elif snapshots:
        snapshot = snapshots[-1]  # one snapshot per pipeline run: the newest is the newest run's
    else:
        raise SystemExit(f"{home}: no snapshots/*.ndjson")
    if con is not None:
        con.close()
    return RunFiles(
        home=home,
        run_id=chosen,
        sft=folder / "sft",
        policy=folder / "policy",
        snapshot=snapshot,
        ledger=home / LEDGER_FILE,
        config=config,
        config_source=config_source,
        run_date=when,
        date_source=date_source,
        mlflow=stages,
    )


def heldout_scenarios(world: World, config: PipelineConfig, run_date: date) -> list[Scenario]:
    """The pipeline's held-out scenarios: make_cohorts seeds each cohort on its own (3·seed + i), so
    the held-out cohort alone is drawn exactly as in the run."""
    cohorts = make_cohorts(world, (0, 0, config.heldout_patients), config.seed, run_date)
    return scenarios_of(cohorts.heldout)


# ----------------------------------------------------------------------------------------------
# Measuring a policy
# ----------------------------------------------------------------------------------------------


class _ZeroValue(nn.Module):
    """A value model that answers 0 everywhere: `collect` wants one, the KL estimate needs none."""

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return torch.zeros(ids.shape, dtype=torch.float32, device=ids.device)


def _no_reward(prompts: list[str], responses: list[str]) -> torch.Tensor:
    return torch.zeros(len(prompts))


@torch.no_grad()
def kl_to_reference(
    policy: PreTrainedModel,
    reference: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    *,
    samples: int,
    response_length: int = 20,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 128,
) -> dict[str, float]:
    """KL(policy ‖ reference) in nats per response: responses sampled from the policy on prompts drawn
    uniformly (seeded), k1 summed over each response's tokens (EOS included), as PPO's final_kl; with
    a normal-approximation 95% interval of the mean."""
    if samples < 2 or not prompts:
        raise ValueError("the KL estimate needs prompts and at least 2 samples")
    policy.eval()
    reference.eval()
    generator = torch.Generator().manual_seed(seed)
    per_response = []
    for begin in range(0, samples, batch_size):
        n = min(batch_size, samples - begin)
        picks = torch.randint(len(prompts), (n,), generator=generator).tolist()
        exp = collect(
            policy,
            reference,
            _ZeroValue(),
            _no_reward,
            tokenizer,
            [prompts[i] for i in picks],
            response_length=response_length,
            temperature=temperature,
            generator=generator,
        )
        per_response.append((kl_k1(exp.logprobs, exp.ref_logprobs) * exp.mask).sum(-1).double())
    kl = torch.cat(per_response)
    mean, half = float(kl.mean()), 1.96 * float(kl.std()) / math.sqrt(len(kl))
    return {"kl": mean, "kl_ci_low": mean - half, "kl_ci_high": mean + half, "samples": float(len(kl))}


def _interval(iv: Any) -> dict[str, float]:
    return {"estimate": iv.estimate, "low": iv.low, "high": iv.high}


def evaluate_method(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    world: World,
    scenarios: Sequence[Scenario],
    *,
    reference: PreTrainedModel | None = None,
    kl_samples: int = 0,
    ppo_config: PPOConfig | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Greedy held-out concordance and unsafe rate with 95% bootstrap intervals (overall and by
    subgroup), the outcomes themselves (for paired comparisons), and, given a reference, KL(π‖ref)."""
    started = time.monotonic()
    model.eval()
    evaluation = evaluate_policy(model, tokenizer, world, scenarios)
    groups = [subgroup_of(s.facts) for s in scenarios]
    intervals = outcome_intervals(evaluation.outcomes, groups, seed=seed)
    out: dict[str, Any] = {
        "n": evaluation.n,
        "concordance": _interval(intervals[""]["concordance"]),
        "unsafe_rate": _interval(intervals[""]["unsafe_rate"]),
        "subgroups": {
            key: {metric: _interval(iv) for metric, iv in by_metric.items()}
            for key, by_metric in intervals.items()
            if key
        },
        "outcomes": evaluation.outcomes,
    }
    if reference is not None and kl_samples > 1:
        ppo_config = ppo_config or PPOConfig()
        prompts = sorted({render_prompt(world, s.facts, s.target) for s in scenarios})
        out["kl_heldout"] = kl_to_reference(
            model,
            reference,
            tokenizer,
            prompts,
            samples=kl_samples,
            response_length=ppo_config.response_length,
            temperature=ppo_config.temperature,
            seed=seed,
        )
    out["eval_seconds"] = time.monotonic() - started
    return out


def paired_difference(outcomes: Sequence[Any], baseline: Sequence[Any], seed: int = 0) -> dict[str, Any]:
    """Change in concordance and unsafe rate from `baseline` on the same scenarios, with a paired
    95% percentile-bootstrap interval (the same resampled scenarios for both)."""
    diff = outcome_flags(outcomes) - outcome_flags(baseline)
    concordance, unsafe = bootstrap_rates(diff, seed=seed)
    return {"concordance": _interval(concordance), "unsafe_rate": _interval(unsafe)}


# ----------------------------------------------------------------------------------------------
# The methods
# ----------------------------------------------------------------------------------------------


def _require_source(pairs: Sequence[PreferencePair], source: str) -> None:
    found = sorted({p.source for p in pairs})
    if found != [source]:
        raise ValueError(f"expected only {source!r} pairs, found sources {found}")


def run_dpo(
    train_pairs: Sequence[PreferencePair],
    sft: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    config: DPOConfig,
    *,
    ledger: PrivacyLedger | None = None,
    snapshot_sha256: str | None = None,
) -> tuple[PreTrainedModel, dict[str, Any]]:
    """DPO from `sft` (left unchanged) on clinicians' pairs; a DP run is charged to `ledger`."""
    _require_source(train_pairs, CLINICIAN)
    started = time.monotonic()
    result = train_dpo(
        train_pairs,
        sft,
        tokenizer,
        config,
        ledger=ledger if config.dp.enabled else None,
        snapshot_sha256=snapshot_sha256 if config.dp.enabled else None,
    )
    info = {
        "feedback_source": CLINICIAN,
        "train_pairs": len(train_pairs),
        "config": asdict(config),
        "epsilon": result.epsilon if config.dp.enabled else math.inf,
        "accountant_epsilon": result.accountant_epsilon if config.dp.enabled else math.inf,
        "delta": result.delta,
        "noise_multiplier": result.noise_multiplier,
        "sample_rate": result.sample_rate,
        "steps": result.steps,
        "final_loss": result.metrics["dpo.loss"],
        "final_margin": result.metrics["dpo.margin"],
        "train_seconds": time.monotonic() - started,
    }
    return result.policy, info


def rubric_judgments(
    world: World, judgments: Sequence[Judgment], config: RubricConfig | None = None
) -> list[Judgment]:
    """The rubric's judgments of the cards the clinicians judged: one per card, all source "ai"."""
    check_sources(judgments)  # the clinicians' snapshot holds one source
    ai = label(world, judgments, config)
    found = check_sources(ai)
    if set(found) != {AI_SOURCE}:
        raise ValueError(f"the rubric's judgments must all be source {AI_SOURCE!r}, found {found}")
    return ai


def rlaif_pairs(world: World, ai_judgments: Sequence[Judgment]) -> list[PreferencePair]:
    """Preference pairs from the rubric's judgments; refuses any pair that is not source "ai"."""
    pairs = pairs_from_judgments(ai_judgments, world=world)
    _require_source(pairs, AI_SOURCE)
    return pairs


def rubric_agreement(world: World, pairs: Sequence[PreferencePair]) -> dict[str, float]:
    """How often the rubric orders clinicians' pairs as the clinicians did (ties: the rubric saw no
    difference). Context for RLAIF: a rubric that agreed with every label would be the clinicians."""
    agree = tie = 0
    for p in pairs:
        choice = preferred(world, p.prompt, p.chosen, p.rejected)
        agree += choice == 0
        tie += choice is None
    n = max(len(pairs), 1)
    return {"agree": agree / n, "tie": tie / n, "disagree": 1 - (agree + tie) / n, "pairs": float(len(pairs))}


def run_rlaif(
    world: World,
    train_pairs: Sequence[PreferencePair],
    sft: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    reward_config: RewardConfig,
    ppo_config: PPOConfig,
    prompts: list[str],
    *,
    ledger: PrivacyLedger | None = None,
    snapshot_sha256: str | None = None,
    lora: LoRAConfig | None = None,
) -> tuple[PreTrainedModel, Any, dict[str, Any]]:
    """A reward model on the rubric's pairs, trained as clinrlhf.pipeline.stages.reward_stage trains
    one, then PPO as ppo_stage runs it. -> (policy, reward result, info)"""
    _require_source(train_pairs, AI_SOURCE)
    started = time.monotonic()
    backbone = copy.deepcopy(sft.transformer)
    reward = train_reward(
        list(train_pairs), backbone, tokenizer, reward_config, ledger=ledger, snapshot_sha256=snapshot_sha256
    )
    reward_seconds = time.monotonic() - started
    policy, reference = policy_and_reference(sft, lora)
    value_model = copy.deepcopy(reward.model)
    reward_fn = prescription_reward(world, reward.model, tokenizer)
    ppo = train_ppo(policy, reference, value_model, reward_fn, tokenizer, prompts, ppo_config)
    aligned = ppo.policy
    if lora is not None:
        from clinrlhf.policy.lora import merge_lora

        aligned = merge_lora(aligned)
    info = {
        "feedback_source": AI_SOURCE,
        "train_pairs": len(train_pairs),
        "reward_config": {k: v for k, v in asdict(reward_config).items() if k != "rater_accuracies"},
        "ppo_config": asdict(ppo_config),
        "epsilon": reward.epsilon if reward_config.dp.enabled else math.inf,
        "delta": reward.delta,
        "noise_multiplier": reward.noise_multiplier,
        "sample_rate": reward.sample_rate,
        "steps": reward.steps,
        "final_kl": ppo.final_kl,
        "final_kl_coef": ppo.final_kl_coef,
        "final_reward_mean": ppo.metrics.get("ppo.final_reward_mean"),
        "reward_seconds": reward_seconds,
        "ppo_seconds": time.monotonic() - started - reward_seconds,
        "train_seconds": time.monotonic() - started,
    }
    return aligned.eval(), reward, info


# ----------------------------------------------------------------------------------------------
# Settings and the benchmark
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchSettings:
    dpo: DPOConfig
    reward: RewardConfig
    ppo: PPOConfig
    kl_samples: int
    max_train_pairs: int | None
    """Train DPO and the RLAIF reward on at most this many pairs (a seeded sample); None: all."""
    utility_patients: int
    quick: bool


def bench_settings(
    config: PipelineConfig, *, quick: bool, dpo_epsilon: float, kl_samples: int | None
) -> BenchSettings:
    """The pipeline's own settings (RLAIF: rater weighting off), or tiny ones under --quick."""
    reward = replace(config.reward, rater_weighting="none", rater_accuracies=None)
    dpo = DPOConfig(
        dp=DPConfig(target_epsilon=dpo_epsilon, accountant=config.reward.dp.accountant), seed=config.seed
    )
    ppo = config.ppo
    if quick:
        reward = replace(reward, epochs=1)
        dpo = replace(dpo, epochs=1)
        ppo = replace(ppo, steps=2, final_kl_samples=min(ppo.final_kl_samples, ppo.batch_size))
    return BenchSettings(
        dpo=dpo,
        reward=reward,
        ppo=ppo,
        kl_samples=kl_samples if kl_samples is not None else (128 if quick else KL_SAMPLES),
        max_train_pairs=512 if quick else None,
        utility_patients=40 if quick else 200,
        quick=quick,
    )


def _subsample(pairs: list[PreferencePair], n: int | None, seed: int) -> list[PreferencePair]:
    if n is None or len(pairs) <= n:
        return pairs
    keep = set(random.Random(seed).sample(range(len(pairs)), n))
    return [p for i, p in enumerate(pairs) if i in keep]


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def _log(message: str) -> None:
    print(f"[alignment_methods] {message}", file=sys.stderr, flush=True)


class _Ledger:
    """The copy of the home's ledger that this benchmark charges, and the ε after each charge."""

    def __init__(self, source: Path, work: Path, digest: str, delta: float, accountant: Any) -> None:
        self.path, self.digest, self.delta, self.accountant = work / LEDGER_FILE, digest, delta, accountant
        if source.exists():
            shutil.copyfile(source, self.path)
        else:
            self.path.unlink(missing_ok=True)
        # The copy keeps the home's δ, fixed by its first run; `delta` only if the home has none yet.
        self.delta = PrivacyLedger(self.path, Budget(COPY_BUDGET_EPSILON, delta)).delta
        self.ledger = PrivacyLedger(self.path, Budget(COPY_BUDGET_EPSILON, self.delta), accountant)
        self.home_entries = len(self.ledger.entries(digest))
        self.names: list[str] = []
        self.steps = [{"after": "the home's ledger (the pipeline)", "composed_epsilon": self.spent()}]

    def spent(self) -> float:
        """The Rényi filter's composed ε of every run on the snapshot, whatever its privacy unit (the
        home keeps one odometer per unit; all of them together bound each)."""
        runs = [e.mechanism for e in self.ledger.entries(self.digest)]
        return filter_epsilon(runs, self.delta)

    def record(self, what: str) -> float | None:
        """After a method ran: the snapshot's composed ε if it charged the ledger, else None."""
        charged = len(self.ledger.entries(self.digest)) - self.home_entries - len(self.names)
        if charged <= 0:
            return None
        self.names += [what] * charged
        spent = self.spent()
        self.steps.append({"after": what, "composed_epsilon": spent})
        return spent

    def mechanisms(self) -> tuple[list[Mechanism], list[tuple[str, Mechanism]]]:
        """(the home's runs on the snapshot, this benchmark's with the method that charged each)."""
        entries = [e.mechanism for e in self.ledger.entries(self.digest)]
        return entries[: self.home_entries], list(zip(self.names, entries[self.home_entries :], strict=True))


def _eps(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(1)
    wall = time.monotonic()
    run = locate_run(args.home, args.run_id, args.run_date)
    config = run.config
    settings = bench_settings(
        config, quick=args.quick, dpo_epsilon=args.dpo_epsilon, kl_samples=args.kl_samples
    )
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    work = (args.work or args.out.with_name(args.out.stem + "_work")).resolve()
    if work == run.home or run.home in work.parents:
        raise SystemExit(f"the work folder {work} must lie outside the home: the home is only read")
    work.mkdir(parents=True, exist_ok=True)
    home_ledger_before = _sha256(run.ledger)
    _log(f"run {run.run_id} of {run.home} (date {run.run_date}, {run.date_source}); work folder {work}")

    world = load_world()
    judgments, digest = read_snapshot(run.snapshot)
    check_sources(judgments)
    if run.snapshot.stem != digest:
        _log(f"warning: {run.snapshot.name} does not hash to its name ({digest[:12]})")
    sft, tokenizer = load_policy(run.sft)
    sft.eval()
    scenarios = heldout_scenarios(world, config, run.run_date)
    prompts = sorted({j.prompt for j in judgments})  # PPO's prompts, as in the pipeline

    # The reward stage's split: by patient, a tenth held out; only the training side is trained on.
    pairs = pairs_from_judgments(judgments, world=world)
    train_pairs, heldout_pairs = split_by_patient(pairs, HELDOUT_FRACTION, config.reward.seed)
    if not train_pairs:
        train_pairs, heldout_pairs = pairs, []
    delta = config.reward.delta_for(count_units(train_pairs, config.reward.privacy_unit))
    ledger = _Ledger(run.ledger, work, digest, delta, config.reward.dp.accountant)
    home_budget = args.budget_epsilon
    _log(
        f"{len(judgments)} judgments, {len(pairs)} clinician pairs ({len(train_pairs)} training); "
        f"{len(scenarios)} held-out scenarios; snapshot ε so far {ledger.steps[0]['composed_epsilon']:.3f}"
    )

    rows: dict[str, dict[str, Any]] = {}
    outcomes: dict[str, Any] = {}
    ppo_stage = run.mlflow.get("ppo", {})
    reward_stage = run.mlflow.get("reward", {})

    def measure(key: str, model: PreTrainedModel, with_kl: bool = True) -> dict[str, Any]:
        _log(f"evaluating {key} on {len(scenarios)} held-out scenarios")
        result = evaluate_method(
            model,
            tokenizer,
            world,
            scenarios,
            reference=sft if with_kl else None,
            kl_samples=settings.kl_samples,
            ppo_config=settings.ppo,
            seed=config.seed,
        )
        outcomes[key] = result.pop("outcomes")
        return result

    if "sft" in methods:
        row = measure("sft", sft, with_kl=False)
        row |= {
            "feedback_source": "none",
            "epsilon": 0.0,
            "snapshot_epsilon_after": None,
            "kl_heldout": {"kl": 0.0},
            "train_seconds": run.mlflow.get("sft", {}).get("seconds"),
            "train_seconds_source": "MLflow (the pipeline's sft stage)",
            "pipeline_eval": run.mlflow.get("eval", {}).get("metrics", {}).get("eval.before.concordance"),
        }
        rows["sft"] = row
    if "ppo" in methods:
        policy, _ = load_policy(run.policy)
        row = measure("ppo", policy)
        pipeline_entries = ledger.ledger.entries(digest)[: ledger.home_entries]
        own = (
            pipeline_entries[-1].epsilon
            if pipeline_entries
            else reward_stage.get("metrics", {}).get("dp.epsilon")
        )
        seconds = [s.get("seconds") for s in (reward_stage, ppo_stage)]
        row |= {
            "feedback_source": CLINICIAN,
            "epsilon": own,
            "snapshot_epsilon_after": ledger.steps[0]["composed_epsilon"],
            "final_kl": ppo_stage.get("metrics", {}).get("ppo.final_kl"),
            "train_seconds": sum(seconds) if all(s is not None for s in seconds) else None,
            "train_seconds_source": "MLflow (the pipeline's reward + ppo stages)",
            "pipeline_eval": run.mlflow.get("eval", {}).get("metrics", {}).get("eval.concordance"),
            "reward_heldout_accuracy": reward_stage.get("metrics", {}).get("reward.heldout_accuracy"),
            "reward_utility_spearman": reward_stage.get("metrics", {}).get("reward.utility_spearman"),
        }
        rows["ppo"] = row
        del policy

    dpo_train = _subsample(train_pairs, settings.max_train_pairs, config.seed)
    for key, dp in (("dpo-dp", True), ("dpo", False)):
        if key not in methods:
            continue
        dpo_config = replace(settings.dpo, dp=replace(settings.dpo.dp, enabled=dp))
        _log(f"training {key} on {len(dpo_train)} clinician pairs")
        try:
            policy, info = run_dpo(
                dpo_train, sft, tokenizer, dpo_config, ledger=ledger.ledger, snapshot_sha256=digest
            )
        except BudgetExceededError as err:  # cannot happen with the copy's budget; reported if it does
            rows[key] = {"error": f"{type(err).__name__}: {err}"}
            continue
        after = ledger.record(NAMES[key].format(eps=args.dpo_epsilon)) if dp else None
        save_policy(policy, tokenizer, work / "policies" / key)
        rows[key] = measure(key, policy) | info | {"snapshot_epsilon_after": after}
        del policy

    if "rlaif" in methods:
        ai = rubric_judgments(
            world, judgments, RubricConfig(error_rate=args.rubric_error_rate, seed=config.seed)
        )
        ai_digest = hashlib.sha256(to_ndjson(ai)).hexdigest()
        (work / "ai_feedback").mkdir(exist_ok=True)
        (work / "ai_feedback" / f"{ai_digest}.ndjson").write_bytes(to_ndjson(ai))
        ai_pairs = rlaif_pairs(world, ai)
        ai_train, ai_heldout = split_by_patient(ai_pairs, HELDOUT_FRACTION, settings.reward.seed)
        if not ai_train:
            ai_train, ai_heldout = ai_pairs, []
        ai_train = _subsample(ai_train, settings.max_train_pairs, config.seed)
        _log(
            f"training RLAIF: reward on {len(ai_train)} rubric pairs, then PPO for {settings.ppo.steps} steps"
        )
        try:
            policy, reward, info = run_rlaif(
                world,
                ai_train,
                sft,
                tokenizer,
                settings.reward,
                settings.ppo,
                prompts,
                ledger=ledger.ledger,
                snapshot_sha256=digest,
                lora=config.lora,
            )
        except (BudgetExceededError, KLCapExceeded) as err:
            rows["rlaif"] = {"error": f"{type(err).__name__}: {err}"}
            ledger.record("RLAIF reward model (DP)")  # a reward that trained was charged all the same
        else:
            after = ledger.record("RLAIF reward model (DP)")
            save_policy(policy, tokenizer, work / "policies" / "rlaif")
            diagnostics: dict[str, Any] = {
                "rubric_judgments": len(ai),
                "rubric_snapshot_sha256": ai_digest,
                "rubric_pairs": len(ai_pairs),
                "rubric_agreement_with_clinicians": rubric_agreement(world, pairs),
                "utility": utility_agreement(
                    reward.model, tokenizer, world, fresh_scenarios(world, settings.utility_patients)
                ),
            }
            if heldout_pairs:
                diagnostics["on_clinicians_heldout_pairs"] = {
                    k: v
                    for k, v in heldout_report(reward.model, tokenizer, heldout_pairs).metrics.items()
                    if k.count(".") == 1
                }
            if ai_heldout:
                diagnostics["on_rubric_heldout_pairs"] = {
                    k: v
                    for k, v in heldout_report(reward.model, tokenizer, ai_heldout).metrics.items()
                    if k.count(".") == 1
                }
            rows["rlaif"] = (
                measure("rlaif", policy)
                | info
                | {
                    "snapshot_epsilon_after": after,
                    "reward_model": diagnostics,
                }
            )
            del policy, reward

    baseline_keys = [k for k in ("sft", "ppo") if k in outcomes]
    for key, row in rows.items():
        if key not in outcomes:
            continue
        row["difference"] = {
            f"vs {NAMES[b]}": paired_difference(outcomes[key], outcomes[b], seed=config.seed)
            for b in baseline_keys
            if b != key
        }

    home_mechs, bench_mechs = ledger.mechanisms()
    combos: dict[str, float | None] = {}
    for name, mech in bench_mechs:  # each method alone on top of the pipeline's spend
        combos[f"pipeline + {name}"] = _eps(filter_epsilon([*home_mechs, mech], ledger.delta))
    if len(bench_mechs) > 1:
        combos["pipeline + " + " + ".join(n for n, _ in bench_mechs)] = _eps(
            filter_epsilon([*home_mechs, *(m for _, m in bench_mechs)], ledger.delta)
        )
    privacy = {
        "snapshot_sha256": digest,
        "delta": ledger.delta,
        "accountant": "rdp-filter",
        "home_ledger": str(run.ledger),
        "home_ledger_unchanged": _sha256(run.ledger) == home_ledger_before,
        "ledger_copy": str(ledger.path),
        "home_budget_epsilon": home_budget,
        "composed_after_each_charge": [
            s | {"within_home_budget": s["composed_epsilon"] <= home_budget} for s in ledger.steps
        ],
        "combinations": combos,
        "note": (
            "The home's ledger already holds the pipeline's reward run on this snapshot, so the DP runs "
            "here were charged to a copy of it with an unlimited budget. composed_epsilon is the snapshot's "
            "cumulative ε (the ledger's Rényi filter, at the home's δ) after each charge: what a hospital would "
            f"spend by running these methods on the same data; a real ledger with budget ε={home_budget:g} "
            "would refuse every charge whose within_home_budget is false. Non-private DPO has no finite ε "
            "and was not charged. The RLAIF reward is charged to the clinicians' snapshot because its "
            "prompts are the same patients' records, though its labels come from the rubric."
        ),
    }
    for row in rows.values():
        for key in ("epsilon", "accountant_epsilon", "snapshot_epsilon_after"):
            if key in row:
                row[key] = _eps(row[key])
    return {
        "mode": "quick (smoke settings: the numbers show only that it runs)" if settings.quick else "full",
        "home": str(run.home),
        "run_id": run.run_id,
        "run_date": run.run_date.isoformat(),
        "run_date_source": run.date_source,
        "pipeline_config_source": run.config_source,
        "snapshot": str(run.snapshot),
        "judgments": len(judgments),
        "clinician_pairs": len(pairs),
        "clinician_train_pairs": len(train_pairs),
        "heldout_scenarios": len(scenarios),
        "settings": {
            "dpo": asdict(settings.dpo),
            "rlaif_reward": {k: v for k, v in asdict(settings.reward).items() if k != "rater_accuracies"},
            "ppo": asdict(settings.ppo),
            "kl_samples": settings.kl_samples,
            "max_train_pairs": settings.max_train_pairs,
            "rubric_error_rate": args.rubric_error_rate,
        },
        "methods": {NAMES[k].format(eps=args.dpo_epsilon): v for k, v in rows.items()},
        "privacy": privacy,
        "work": str(work),
        "seconds": time.monotonic() - wall,
    }


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------


def _ci(x: dict[str, float] | None) -> str:
    return "—" if not x else f"{x['estimate']:.3f} [{x['low']:.3f}, {x['high']:.3f}]"


def _signed(x: dict[str, float] | None) -> str:
    return "—" if not x else f"{x['estimate']:+.3f} [{x['low']:+.3f}, {x['high']:+.3f}]"


def _num(x: Any, fmt: str = ".2f", none: str = "—") -> str:
    return none if x is None else format(x, fmt)


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| Method | Feedback | Concordance [95% CI] | Δ conc. vs SFT [95% CI] | Unsafe rate [95% CI] "
        "| KL(π‖SFT) held-out | PPO final KL | ε (method) | Snapshot ε after | Train s | Eval s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in result["methods"].items():
        if "error" in row:
            lines.append(f"| {name} | — | failed: {row['error']} |  |  |  |  |  |  |  |  |")
            continue
        kl = row.get("kl_heldout")
        kl_text = (
            "—"
            if not kl
            else (f"{kl['kl']:.2f}" + (f" ± {kl['kl'] - kl['kl_ci_low']:.2f}" if "kl_ci_low" in kl else ""))
        )
        diff = row.get("difference", {}).get("vs SFT", {}).get("concordance")
        eps = row.get("epsilon")
        eps_text = "∞ (no DP)" if eps is None and row.get("feedback_source") != "none" else _num(eps)
        train = _num(row.get("train_seconds"), ".0f") + ("*" if row.get("train_seconds_source") else "")
        lines.append(
            f"| {name} | {row.get('feedback_source', '—')} | {_ci(row['concordance'])} | {_signed(diff)} "
            f"| {_ci(row['unsafe_rate'])} | {kl_text} | {_num(row.get('final_kl'))} | {eps_text} "
            f"| {_num(row.get('snapshot_epsilon_after'))} | {train} | {_num(row.get('eval_seconds'), '.0f')} |"
        )
    privacy = result["privacy"]
    notes = [
        "",
        f"Run {result['run_id']} ({result['mode']}); {result['heldout_scenarios']} held-out scenarios, greedy; "
        "95% percentile-bootstrap intervals; Δ is paired on the same scenarios.",
        "KL(π‖SFT): sampled on held-out prompts at PPO's temperature, nats per response, ± 95% normal interval. "
        "PPO final KL: PPO's own measurement on its training prompts.",
        "* taken from the pipeline's MLflow stage runs (reward + PPO for PPO (pipeline)), not timed here.",
    ]
    for name, row in result["methods"].items():
        if row.get("pipeline_eval") is not None:
            same = (
                "same" if abs(row["concordance"]["estimate"] - row["pipeline_eval"]) < 1e-9 else "DIFFERENT"
            )
            notes.append(
                f"{name}: concordance {row['concordance']['estimate']:.4f} here, "
                f"{row['pipeline_eval']:.4f} in the run's own eval ({same})."
            )
    notes += [
        "",
        "Privacy (snapshot " + privacy["snapshot_sha256"][:12] + f", δ={privacy['delta']:.3g}):",
    ]
    for step in privacy["composed_after_each_charge"]:
        refused = (
            ""
            if step["within_home_budget"]
            else f"  (over the home budget ε={privacy['home_budget_epsilon']:g})"
        )
        notes.append(
            f"- after {step['after']}: composed ε = {_num(_eps(step['composed_epsilon']), '.3f', '∞')}{refused}"
        )
    for what, eps in privacy["combinations"].items():
        notes.append(f"- {what}: ε = {_num(eps, '.3f', '∞')}")
    notes.append(privacy["note"])
    return "\n".join(lines + notes)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.floating | np.integer):
        return _json_safe(value.item())
    if isinstance(value, Path):
        return str(value)
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  OMP_NUM_THREADS=1 python benchmarks/alignment_methods.py --home ~/.clinrlhf --out alignment.json\n"
            "  python benchmarks/alignment_methods.py --home ~/.clinrlhf --methods sft,ppo,dpo-dp\n"
            "  python benchmarks/alignment_methods.py --home /tmp/qs5 --quick --out /tmp/quick.json\n"
        ),
    )
    parser.add_argument(
        "--home",
        type=Path,
        required=True,
        help="CLINRLHF_HOME of a finished `clinrlhf quickstart` or `pipeline`",
    )
    parser.add_argument("--run-id", help="which run under <home>/runs (default: the newest finished one)")
    parser.add_argument("--out", type=Path, default=Path("alignment_methods.json"), help="JSON results file")
    parser.add_argument(
        "--work",
        type=Path,
        help="folder for the ledger copy, the rubric's judgments and the new policies "
        "(default: <out stem>_work next to --out); never the home",
    )
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated subset of {','.join(METHODS)} (default: all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke settings: ≤512 training pairs, 1 epoch of DPO and reward, 2 PPO steps, 128 KL samples",
    )
    parser.add_argument(
        "--dpo-epsilon", type=float, default=8.0, help="target ε of DP DPO (default 8, as the reward)"
    )
    parser.add_argument(
        "--kl-samples",
        type=int,
        help=f"responses per policy for the held-out KL (default {KL_SAMPLES}; quick 128)",
    )
    parser.add_argument(
        "--rubric-error-rate",
        type=float,
        default=0.0,
        help="share of rubric labels flipped (a fallible AI judge)",
    )
    parser.add_argument(
        "--budget-epsilon",
        type=float,
        default=Settings.model_fields["privacy_budget_epsilon"].default,
        help="the home's per-snapshot budget, to say which charges a real ledger would refuse (default: "
        "CLINRLHF_PRIVACY_BUDGET_EPSILON's default)",
    )
    parser.add_argument(
        "--run-date",
        type=date.fromisoformat,
        help="date the run drew its cohorts (YYYY-MM-DD); default: read from MLflow",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = run_benchmark(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_json_safe(result), indent=2, allow_nan=False))
    print(markdown(result))
    print(f"\nJSON: {args.out}   work folder: {result['work']}   {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
