"""The whole pipeline over several seeds, as a distribution: per seed, mean ± sd, and the worst run.

    python benchmarks/pipeline_seeds.py --seeds 0 1 2 3 4 --work /tmp/seeds --out pipeline_seeds.json
    python benchmarks/pipeline_seeds.py --seeds 0 1 2 3 4 --work /tmp/seeds --cohort validation --reuse

Each seed is one real `clinrlhf pipeline --seed S` (benchmarks/pipeline_runs.py) in its own
CLINRLHF_HOME under --work, with a de-identification key of its own seed (synthetic patients only),
so a seed reruns to the same snapshot. The pipeline seed is the one knob: it moves the cohorts, the
panel, SFT, the reward model and PPO together (clinrlhf.pipeline.seeds).

--cohort test (the default) reports what each run reported once, on its test cohort: concordance,
unsafe rate, concordance on the test scenarios whose prompt no trainer read, the aligned policy's
largest concordance gap between age bands and between sexes (groups with n >= the acceptance
criteria's min_subgroup_n), final KL and KL / target, ε, and wall and CPU time of the run.
--cohort validation evaluates the same finished policies on each seed's validation cohort instead,
with the test cohort sealed (clinrlhf.pipeline.tuning): that is the table defaults are chosen by.
--reuse reads runs already finished under --work instead of running them again.

Writes the rows and aggregate as JSON (--out) and prints the Markdown table (benchmarks/seed_table.py).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import open_client  # noqa: E402
from pipeline_runs import PipelineRun, run_pipeline  # noqa: E402
from seed_table import aggregate, markdown  # noqa: E402

from clinrlhf.compliance.criteria import AcceptanceCriteria  # noqa: E402
from clinrlhf.compliance.evalmetrics import parse_rates  # noqa: E402
from clinrlhf.lineage.chain import load_chain  # noqa: E402

COHORTS = ("test", "validation")
GAP_ATTRIBUTES = ("age_band", "sex")


def seed_key(seed: int) -> str:
    """The de-identification key of a seed's run: synthetic patients only, never a deployment's."""
    return f"pipeline-seeds-synthetic-only-{seed}"


def attribute_gaps(
    metrics: Mapping[str, float], min_n: int, prefix: str = "eval."
) -> dict[str, float | None]:
    """{attribute: largest concordance difference between two of its groups with n >= min_n}, from an
    eval run's metrics (eval.concordance.<attribute>.<group>, eval.n.<attribute>.<group>)."""
    rates = parse_rates(metrics, prefix)
    return {attribute: rates.gap("concordance", attribute, min_n) for attribute in GAP_ATTRIBUTES}


def _common(run: PipelineRun, seed: int) -> dict[str, Any]:
    s = run.summary
    kl, target = s.get("kl"), s.get("kl_target")
    return {
        "seed": seed,
        "kl": kl,
        "kl_over_target": kl / target if kl is not None and target else None,
        "epsilon": s.get("epsilon"),
        "wall_seconds": run.seconds,
        "cpu_seconds": run.cpu_seconds,
        "home": str(run.home),
        "mlflow_run_id": s.get("mlflow_run_id"),
    }


def row_on_test(run: PipelineRun, seed: int, min_n: int) -> dict[str, Any]:
    """What the run itself reported on its test cohort."""
    s = run.summary
    evaluation = load_chain(open_client(run.home), s["mlflow_run_id"]).stage("eval")
    gaps = attribute_gaps(evaluation.data.metrics if evaluation else {}, min_n)
    unseen = s.get("unseen_prompts", {})
    return _common(run, seed) | {
        "concordance": s["after"]["concordance"],
        "unsafe_rate": s["after"]["unsafe_rate"],
        "unseen_concordance": unseen.get("concordance") if unseen.get("n") else None,
        "unseen_n": unseen.get("n"),
        "age_band_gap": gaps["age_band"],
        "sex_gap": gaps["sex"],
    }


def row_on_validation(run: PipelineRun, seed: int, min_n: int) -> dict[str, Any]:
    """The run's aligned policy evaluated on its validation cohort (the test cohort sealed)."""
    import torch

    from clinrlhf.eval.evaluate import evaluate_policy
    from clinrlhf.eval.unseen import unseen_rates
    from clinrlhf.feedback.judgment import from_ndjson
    from clinrlhf.pipeline.cohorts import CohortSizes, make_cohorts, practice_examples, scenarios
    from clinrlhf.pipeline.logged import load_logged_config
    from clinrlhf.pipeline.prompts import ppo_prompts
    from clinrlhf.pipeline.run import training_prompts
    from clinrlhf.policy.model import load_policy
    from clinrlhf.text.prompt import render_prompt
    from clinrlhf.world.world import load_world

    torch.set_num_threads(1)
    client = open_client(run.home)
    chain = load_chain(client, run.summary["mlflow_run_id"])
    config, _ = load_logged_config(client, chain.pipeline.info.run_id)
    day = datetime.fromtimestamp(chain.pipeline.info.start_time / 1000, UTC).date()
    world = load_world()
    sizes = CohortSizes(history=config.history_patients, validation=config.validation_patients)
    cohorts = make_cohorts(world, sizes, config.seed, day)
    cases = scenarios(cohorts.validation)
    policy, tokenizer = load_policy(Path(run.summary["policy_dir"]))
    result = evaluate_policy(policy.eval(), tokenizer, world, cases)
    examples = practice_examples(world, cohorts.history, seed_key(seed).encode(), day, config.seed)
    reward = chain.stage("reward")
    digest = reward.data.tags.get("clinrlhf.dataset_sha256", "") if reward else ""
    snapshot = run.home / "snapshots" / f"{digest}.ndjson"
    judgments = from_ndjson(snapshot.read_bytes()) if snapshot.is_file() else []
    seen = training_prompts(examples, ppo_prompts(config.ppo_prompts, judgments, examples))
    unseen = unseen_rates([render_prompt(world, c.facts, c.target) for c in cases], result.outcomes, seen)
    gaps = attribute_gaps(result.metrics(), min_n)
    return _common(run, seed) | {
        "concordance": result.concordance,
        "unsafe_rate": result.unsafe_rate,
        "unseen_concordance": unseen["concordance"] if unseen["n"] else None,
        "unseen_n": unseen["n"],
        "age_band_gap": gaps["age_band"],
        "sex_gap": gaps["sex"],
    }


def finished(home: Path) -> PipelineRun:
    """A run already finished in `home` (--reuse): its summary, as run_pipeline returned it."""
    summary = json.loads((home / "summary.json").read_text())
    timing = json.loads((home / "timing.json").read_text())
    return PipelineRun(home, summary, timing["wall_seconds"], timing["cpu_seconds"])


def run_seed(seed: int, overrides: dict, work: Path, reuse: bool) -> PipelineRun:
    home = work / f"seed{seed}"
    if reuse and (home / "summary.json").is_file():
        return finished(home)
    print(f"seed {seed}: running the pipeline …", file=sys.stderr, flush=True)
    run = run_pipeline(f"seed{seed}", overrides, work, seed, shared_key=seed_key(seed))
    (home / "summary.json").write_text(json.dumps(run.summary, indent=2))
    (home / "timing.json").write_text(
        json.dumps({"wall_seconds": run.seconds, "cpu_seconds": run.cpu_seconds})
    )
    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--config", type=Path, help="pipeline config JSON laid under every seed's run")
    parser.add_argument(
        "--cohort", choices=COHORTS, default="test", help="test (report) or validation (tune)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="pipelines run at once (each is one process)")
    parser.add_argument("--work", type=Path, required=True, help="one CLINRLHF_HOME per seed under here")
    parser.add_argument("--reuse", action="store_true", help="read runs already finished under --work")
    parser.add_argument("--out", type=Path, default=Path("pipeline_seeds.json"))
    args = parser.parse_args(argv)
    if args.jobs < 1:
        raise SystemExit("--jobs must be at least 1")
    try:
        overrides = json.loads(args.config.read_text()) if args.config else {}
    except (OSError, json.JSONDecodeError) as err:
        raise SystemExit(f"cannot read --config {args.config}: {err}") from None
    args.work.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(lambda s: run_seed(s, overrides, args.work, args.reuse), args.seeds))
    min_n = AcceptanceCriteria().min_subgroup_n
    if args.cohort == "validation":
        from clinrlhf.pipeline.cohorts import sealed_test_cohort

        seal = sealed_test_cohort("benchmarks/pipeline_seeds.py --cohort validation")
    else:
        seal = nullcontext()
    with seal:
        row_of = row_on_validation if args.cohort == "validation" else row_on_test
        rows = [row_of(run, seed, min_n) for run, seed in zip(runs, args.seeds, strict=True)]
    result = {
        "cohort": args.cohort,
        "seeds": args.seeds,
        "config": overrides,
        "date": date.today().isoformat(),
        "rows": rows,
        "aggregate": aggregate(rows),
    }
    args.out.write_text(json.dumps(result, indent=2, default=lambda v: None))
    print(markdown(rows, args.cohort))
    print(f"-> {args.out}", file=sys.stderr)
    return 0 if all(math.isfinite(r["concordance"]) for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
