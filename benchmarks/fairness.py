"""The loop's fairness audit: subgroup performance of one finished run, and what steering does to
who gets judged.

    OMP_NUM_THREADS=1 python benchmarks/fairness.py audit --home $CLINRLHF_HOME --out fairness_audit.json
    OMP_NUM_THREADS=1 python benchmarks/fairness.py steering --out fairness_steering.json
    OMP_NUM_THREADS=1 python benchmarks/fairness.py steering --attribute age_band --patients 300 --floor 0.15
    OMP_NUM_THREADS=1 python benchmarks/fairness.py loop --work /tmp/fairness --out fairness_loop.json  # ~15 min

audit (reads a finished run, trains and writes nothing in the home)
  Given a CLINRLHF_HOME where `clinrlhf quickstart` or `clinrlhf pipeline` has finished, it opens the
  home's MLflow store (sqlite:///HOME/mlflow.db) with MlflowClient, takes the newest FINISHED
  pipeline run (or --run-id: a pipeline run or any of its stages) and walks to its `eval` stage with
  clinrlhf.lineage.chain.load_chain, as `clinrlhf report` does. Its metrics are read back with
  clinrlhf.lineage.evalmetrics.parse_eval_run, as `clinrlhf promote` does: the aligned policy under
  `eval.`, the supervised baseline under `eval.before.`, 95% percentile-bootstrap bounds as
  `<metric>_ci_low` / `<metric>_ci_high`. Nothing is re-evaluated: the figures are the run's own.
  Reported per attribute (sex, age band, OMB race and ethnicity) and group: the held-out scenarios n,
  concordance and unsafe rate with their intervals, supervised and aligned. Then per metric the
  largest gap between two groups of one attribute, counting only groups with n >= min_subgroup_n
  (30 by default): the figure is clinrlhf.lineage.evalmetrics.max_gap's, the one the promotion gate
  uses, and the two groups behind it are named. Last, the gate's own verdict
  (clinrlhf.lineage.criteria.check_criteria) on its two subgroup-gap criteria for the aligned policy.
  Smaller groups are listed but marked "(n < 30: not in the gap)".
  Not measured: whether a gap is statistically real (the gate compares point estimates; the
  intervals are per group, not of the difference), and attributes the eval run did not log.

steering (no server, no training: a few seconds)
  What clinrlhf.feedback.steering does to feedback collection. The feedback cohort is drawn exactly
  as the pipeline draws it (clinrlhf.pipeline.cohorts.make_cohorts with PipelineConfig() sizes and
  seed; the pipeline uses date.today(), here a fixed --date so the output reproduces), and each
  patient is grouped as PanelSession.selection groups them: subgroup_of(facts)[attribute], "unknown"
  where missing. With a budget of N patients (default: half the cohort) four arms choose whom to send:
    unsteered      the first N: what the panel does with no steering (PanelConfig.steering None) if
                   it stops after N. generate_patients draws every patient independently, so the
                   first N are a proportional sample (their ratios to the population share are ~1).
    population     steered_order aimed at the population's own shares: the steered code path with
                   nothing to correct: it should stay proportional (ratios ~1), a check that
                   steering reaches the shares it is given.
    equal shares   SteeringConfig(attribute, patients=N): target_shares empty, equal over groups seen.
    floor F        every group's target at least F (--floor), the rest proportional (water-filling).
  Each steered arm is drawn once per --seeds value (random.Random(seed), as the session seeds it); per
  group it reports patients sent (mean, [min-max] over seeds), share of the budget and its ratio to
  the group's population share, and how many the smallest group got. A group smaller than its
  target is exhausted: steering cannot send patients the cohort does not have.
  What steered_order converges to: it draws a group with probability ∝ target × target / observed
  share, whose fixed point is observed = target (clinrlhf.feedback.steering). An earlier version drew
  ∝ target / observed and settled at observed ∝ √target, compressing 60/30/10 to about 47/33/19;
  this benchmark's "population" arm is what showed it. The targets table lists each arm's target
  beside the share it got (mean over seeds), so any such drift shows. Beside them, the
  held-out scenarios per group in the pipeline's held-out cohort (what the eval's n will be) with
  the worst-case half-width of a 95% normal interval, 1.96 * sqrt(0.25 / n): it ignores that one
  patient's scenarios are correlated, so real intervals are wider. That width is why steering exists.
  Not measured: what steering does to the reward model or to the aligned policy's subgroup gaps
  (that needs pipeline runs with PanelConfig.steering set), judgments per patient (steered_order
  assumes one judged card per patient), or rater behaviour.

loop (two real pipeline runs, ~8 min each at the default budget)
  What steering does to the aligned policy, which `steering` cannot say. Two `clinrlhf pipeline` runs
  (benchmarks/pipeline_runs.py), each in its own home under --work, with the same budget of N
  feedback patients (default: half the cohort) and everything else the quickstart's:
    unsteered  feedback_patients N: the cohort's first N, a proportional sample
    steered    the whole cohort offered, PanelConfig.steering {attribute, patients: N}: equal shares
  Paired as poisoning_loop.py --sequential pairs its variants: the panel posts one patient at a time
  and both arms pseudonymise with one key (synthetic patients only), so the supervised policy, the
  held-out patients and the reward-model split are the same, and the arms differ only in whom the
  panel judged. Each arm is then read back with `audit` (its own eval run): per group of the
  attribute, the patients sent (as the panel draws them: the first N, or steered_order seeded with
  PanelConfig.seed), held-out n, supervised and aligned concordance and unsafe rate with intervals;
  the aligned policy's largest gap within the attribute; and the promotion gate's verdict (which
  covers every attribute). Not measured: run-to-run spread (one seed), and whether a change in a gap
  is larger than the intervals of the groups behind it.

Output: a Markdown table on stdout, the same content as JSON at --out (null for a missing figure).
A bad home, run or option exits non-zero with one line saying why.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sqlite3
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from clinrlhf.eval.evaluate import subgroup_of
from clinrlhf.feedback.steering import SteeringConfig, steered_order, target_shares
from clinrlhf.lineage.chain import Chain, RunNotFound, load_chain
from clinrlhf.lineage.criteria import AcceptanceCriteria, CriterionResult, check_criteria, load_criteria
from clinrlhf.lineage.evalmetrics import Rates, max_gap, parse_eval_run
from clinrlhf.lineage.runs import EXPERIMENT
from clinrlhf.pipeline.cohorts import make_cohorts, scenarios
from clinrlhf.pipeline.config import PipelineConfig
from clinrlhf.world.world import load_world

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_runs import SEQUENTIAL, merged, run_pipeline  # noqa: E402

METRICS = {"concordance": "concordance", "unsafe_rate": "unsafe"}
POLICIES = {"supervised": "before", "aligned": "after"}  # label -> parse_eval_run's key
ATTRIBUTES = ("sex", "age_band", "race", "ethnicity")
DEFAULT_DATE = date(2025, 6, 1)
DEFAULT_SEEDS = (0, 1, 2)
Z95 = 1.96

# ----------------------------------------------------------------------------------------------
# audit: the arithmetic (pure)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    """The largest difference in one metric between two groups of one attribute."""

    metric: str
    policy: str
    gap: float
    attribute: str
    high_group: str
    high_value: float
    low_group: str
    low_value: float


def figure(values: Mapping[str, float], metric: str) -> dict[str, float | None]:
    """A metric with its bootstrap bounds; None where the run logged none."""
    return {
        "value": values.get(metric),
        "ci_low": values.get(f"{metric}_ci_low"),
        "ci_high": values.get(f"{metric}_ci_high"),
    }


def largest_gap(rates: Rates, metric: str, policy: str, min_n: int) -> Gap | None:
    """The gate's gap (max_gap: same figure, same attribute) and the two groups that make it."""
    found = max_gap(rates, metric, min_n)
    if found is None:
        return None
    gap, attribute = found
    members = [(g, v[metric]) for a, g, v in rates.groups(min_n) if a == attribute and metric in v]
    (high, high_value), (low, low_value) = max(members, key=_second), min(members, key=_second)
    return Gap(metric, policy, gap, attribute, high, high_value, low, low_value)


def _second(pair: tuple[str, float]) -> float:
    return pair[1]


def group_rows(rates: Mapping[str, Rates], min_n: int) -> list[dict[str, Any]]:
    """One row per (attribute, group) that either policy logged, both policies side by side."""
    keys = sorted({(a, g) for r in rates.values() for a, groups in r.subgroups.items() for g in groups})
    rows = []
    for attribute, group in keys:
        per_policy = {
            label: rates[key].subgroups.get(attribute, {}).get(group, {}) for label, key in POLICIES.items()
        }
        n = per_policy["aligned"].get("n", per_policy["supervised"].get("n", 0.0))
        row: dict[str, Any] = {"attribute": attribute, "group": group, "n": int(n), "in_gap": n >= min_n}
        for label, values in per_policy.items():
            row[label] = {metric: figure(values, metric) for metric in METRICS}
        rows.append(row)
    return rows


def gate_verdicts(after: Rates, criteria: AcceptanceCriteria) -> list[CriterionResult]:
    """check_criteria's own results for its two subgroup-gap criteria (ε is not this audit's)."""
    return [r for r in check_criteria(criteria, after, math.inf) if r.name.startswith("subgroup gap")]


def audit_report(rates: Mapping[str, Rates], criteria: AcceptanceCriteria) -> dict[str, Any]:
    """Everything the audit shows, from parse_eval_run's result: JSON-ready apart from NaN."""
    min_n = criteria.min_subgroup_n
    gaps = {
        (metric, label): largest_gap(rates[key], metric, label, min_n)
        for metric in METRICS
        for label, key in POLICIES.items()
    }
    return {
        "criteria": {"max_subgroup_gap": criteria.max_subgroup_gap, "min_subgroup_n": min_n},
        "overall": {
            "n": int(rates["after"].get("n", rates["before"].get("n", 0.0))),
            **{label: {m: figure(rates[k].overall, m) for m in METRICS} for label, k in POLICIES.items()},
        },
        "groups": group_rows(rates, min_n),
        # None: no attribute has two groups with n >= min_n, which the gate counts as a failure.
        "gaps": [asdict(g) if g else {"metric": m, "policy": p, "gap": None} for (m, p), g in gaps.items()],
        "gate": [asdict(r) for r in gate_verdicts(rates["after"], criteria)],
    }


# ----------------------------------------------------------------------------------------------
# audit: Markdown
# ----------------------------------------------------------------------------------------------


def _ci(fig: Mapping[str, float | None]) -> str:
    value, low, high = fig.get("value"), fig.get("ci_low"), fig.get("ci_high")
    if value is None or not math.isfinite(value):
        return "–"
    if low is None or high is None:
        return f"{value:.3f}"
    return f"{value:.3f} ({low:.3f}–{high:.3f})"


def _row(attribute: str, group: str, n: str, row: Mapping[str, Any]) -> str:
    cells = [_ci(row[label][metric]) for metric in METRICS for label in POLICIES]
    return f"| {attribute} | {group} | {n} | " + " | ".join(cells) + " |"


def _gap_line(gap: Mapping[str, Any], limit: float, min_n: int) -> str:
    if gap["gap"] is None:
        missing = f"no two groups with n >= {min_n}"
        return f"| {METRICS[gap['metric']]} | {gap['policy']} | – | – | {missing} | no |"
    verdict = "yes" if gap["gap"] <= limit else "no"
    return (
        f"| {METRICS[gap['metric']]} | {gap['policy']} | {gap['gap']:.3f} | {gap['attribute']} "
        f"| {gap['high_group']} {gap['high_value']:.3f} vs {gap['low_group']} {gap['low_value']:.3f} "
        f"| {verdict} |"
    )


def audit_markdown(report: Mapping[str, Any]) -> str:
    min_n, limit = report["criteria"]["min_subgroup_n"], report["criteria"]["max_subgroup_gap"]
    header = " | ".join(f"{label} {METRICS[m]} (95% CI)" for m in METRICS for label in POLICIES)
    lines = [f"| attribute | group | n | {header} |", "|---|---|---|---|---|---|---|"]
    lines.append(_row("all", "–", str(report["overall"]["n"]), report["overall"]))
    for row in report["groups"]:
        n = str(row["n"]) if row["in_gap"] else f"{row['n']} (n < {min_n}: not in the gap)"
        lines.append(_row(row["attribute"], row["group"], n, row))
    lines += [
        "",
        f"Largest gap between two groups of one attribute, groups with n >= {min_n} only:",
        "",
        f"| metric | policy | gap | attribute | groups (high vs low) | <= {limit:.3f} |",
        "|---|---|---|---|---|---|",
        *(_gap_line(g, limit, min_n) for g in report["gaps"]),
        "",
        "Promotion gate (clinrlhf.lineage.criteria.check_criteria, aligned policy):",
        "",
        *(
            f"- {g['name']}: {g['measured']} (required {g['required']}): {'pass' if g['passed'] else 'FAIL'}"
            for g in report["gate"]
        ),
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# audit: reading the store
# ----------------------------------------------------------------------------------------------


def open_client(home: Path) -> MlflowClient:
    """A client on HOME/mlflow.db; refuses a missing or non-MLflow file before MLflow would create
    tables in it (opening an empty sqlite file through MLflow initialises a fresh store)."""
    db = home.expanduser().resolve() / "mlflow.db"
    if not db.is_file():
        raise SystemExit(
            f"{home}: no mlflow.db; is it a home where `clinrlhf quickstart` or `pipeline` finished?"
        )
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            con.execute("select 1 from runs limit 1")
    except sqlite3.Error as err:
        raise SystemExit(f"{db}: not an MLflow store ({err})") from None
    for noisy in ("mlflow", "alembic"):  # the store check logs at INFO on every open
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return MlflowClient(tracking_uri=f"sqlite:///{db}")


def newest_pipeline_run(client: MlflowClient) -> str:
    """The newest FINISHED pipeline run: a failed or running one has no complete eval to audit."""
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        raise SystemExit(f"no MLflow experiment {EXPERIMENT!r} in this store: no pipeline has run")
    runs = client.search_runs(
        [experiment.experiment_id],
        "tags.`clinrlhf.stage` = 'pipeline' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        raise SystemExit("no finished pipeline run in this store")
    return runs[0].info.run_id


def find_chain(client: MlflowClient, run_id: str | None) -> Chain:
    try:
        return load_chain(client, run_id or newest_pipeline_run(client))
    except RunNotFound as err:
        raise SystemExit(str(err)) from None
    except MlflowException as err:
        raise SystemExit(f"cannot read the MLflow store: {str(err).splitlines()[0]}") from None


def audit(
    home: Path, run_id: str | None = None, criteria: AcceptanceCriteria | None = None
) -> dict[str, Any]:
    """The audit report of one pipeline run in `home`, with where its figures came from."""
    client = open_client(home)
    chain = find_chain(client, run_id)
    pipeline, evaluation = chain.pipeline, chain.stage("eval")
    if evaluation is None:
        raise SystemExit(f"pipeline run {pipeline.info.run_id} has no eval run (did it finish?)")
    report = audit_report(parse_eval_run(evaluation.data.metrics), criteria or AcceptanceCriteria())
    started = datetime.fromtimestamp(pipeline.info.start_time / 1000, UTC).isoformat(timespec="seconds")
    return {
        "home": str(home.expanduser().resolve()),
        "pipeline_run_id": pipeline.info.run_id,
        "pipeline_status": pipeline.info.status,
        "pipeline_started": started,
        "eval_run_id": evaluation.info.run_id,
        **report,
    }


# ----------------------------------------------------------------------------------------------
# steering: the arithmetic (pure)
# ----------------------------------------------------------------------------------------------


def shares(counts: Mapping[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {g: n / total for g, n in sorted(counts.items())} if total else {}


def floor_shares(population: Mapping[str, int], floor: float) -> dict[str, float]:
    """Target shares: each group at least `floor`, the rest of the mass proportional to population.
    Water-filling: raising small groups to the floor shrinks the others, which may fall below it."""
    groups = sorted(g for g, n in population.items() if n > 0)
    if floor < 0 or floor * len(groups) > 1 + 1e-12:
        raise ValueError(f"a floor of {floor} over {len(groups)} groups is not a distribution")
    fixed: set[str] = set()
    while True:
        free = [g for g in groups if g not in fixed]
        mass, total = 1.0 - floor * len(fixed), sum(population[g] for g in free)
        targets = {g: floor if g in fixed else mass * population[g] / total for g in groups}
        below = {g for g in free if targets[g] < floor}
        if not below:
            return targets
        fixed |= below


def draw_counts(groups: Sequence[str], wanted: Mapping[str, float], budget: int, seed: int) -> Counter[str]:
    """Patients per group that steered_order sends, seeded as PanelSession.selection seeds it."""
    config = SteeringConfig(target_shares=dict(wanted), patients=budget)
    return Counter(groups[i] for i in steered_order(groups, config, random.Random(seed)))


def summarise_arm(
    population: Mapping[str, int], draws: Sequence[Counter[str]], budget: int
) -> dict[str, Any]:
    """Per group: sent (mean, min, max over draws), share of the budget, ratio to population share."""
    pop_share = shares(population)
    rows = {}
    for group in sorted(population):
        sent = [d.get(group, 0) for d in draws]
        mean = sum(sent) / len(sent)
        rows[group] = {
            "population": population[group],
            "population_share": pop_share[group],
            "sent_mean": mean,
            "sent_min": min(sent),
            "sent_max": max(sent),
            "share": mean / budget,
            "ratio": (mean / budget) / pop_share[group] if pop_share[group] else math.nan,
        }
    smallest = min(population, key=lambda g: (population[g], g))  # ties: alphabetical, reproducible
    return {"groups": rows, "smallest_group": {"group": smallest, **rows[smallest]}}


def heldout_counts(
    patient_groups: Sequence[str | None], scenario_groups: Sequence[str | None]
) -> dict[str, Any]:
    """Held-out patients and scenarios per group, and the worst-case 95% half-width at that n.
    A missing attribute (None) is skipped, as the eval leaves such a scenario out of the group."""
    patients = Counter(g for g in patient_groups if g is not None)
    counted = Counter(g for g in scenario_groups if g is not None)
    return {
        g: {
            "patients": patients[g],
            "scenarios": n,
            "half_width": Z95 * math.sqrt(0.25 / n),
        }
        for g, n in sorted(counted.items())
    }


def arm_targets(population: Mapping[str, int], floor: float) -> dict[str, dict[str, float]]:
    """The target shares each steered arm hands to steered_order (empty = equal shares)."""
    return {"population": shares(population), "equal": {}, "floor": floor_shares(population, floor)}


def steering_arms(
    groups: Sequence[str], budget: int, seeds: Sequence[int], floor: float
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """Each arm's summary, and the target shares steered_order aimed at (after its normalising)."""
    population = Counter(groups)
    wanted = arm_targets(population, floor)
    arms = {"unsteered": summarise_arm(population, [Counter(groups[:budget])], budget)}
    for arm, targets in wanted.items():
        draws = [draw_counts(groups, targets, budget, seed) for seed in seeds]
        arms[arm] = summarise_arm(population, draws, budget)
    aimed = {arm: target_shares(groups, targets) for arm, targets in wanted.items()}
    got = {arm: {g: row["share"] for g, row in arms[arm]["groups"].items()} for arm in aimed}
    return arms, {arm: {"target": t, "achieved": got[arm]} for arm, t in aimed.items()}


# ----------------------------------------------------------------------------------------------
# steering: the cohort and the report
# ----------------------------------------------------------------------------------------------


def pipeline_sizes(config: PipelineConfig) -> tuple[int, int, int]:
    return (config.history_patients, config.feedback_patients, config.heldout_patients)


def steering(
    attribute: str = "race",
    *,
    patients: int | None = None,
    seed: int = 0,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    floor: float = 0.1,
    day: date = DEFAULT_DATE,
    sizes: tuple[int, int, int] | None = None,
) -> dict[str, Any]:
    """The steering comparison on the pipeline's feedback cohort (cohort seed `seed`, date `day`)."""
    sizes = sizes or pipeline_sizes(PipelineConfig())
    cohorts = make_cohorts(load_world(), sizes, seed, day)
    # As PanelSession.selection groups patients: a missing attribute is its own group, "unknown".
    groups = [subgroup_of(p.facts).get(attribute, "unknown") for p in cohorts.feedback]
    budget = len(groups) // 2 if patients is None else patients
    if not 1 <= budget <= len(groups):
        raise SystemExit(f"--patients must be between 1 and the cohort's {len(groups)} patients")
    if floor * len(set(groups)) > 1 + 1e-12:
        raise SystemExit(f"--floor {floor} over {len(set(groups))} groups of {attribute} exceeds 1")
    arms, targets = steering_arms(groups, budget, seeds, floor)
    heldout = heldout_counts(
        [subgroup_of(p.facts).get(attribute) for p in cohorts.heldout],
        [subgroup_of(s.facts).get(attribute) for s in scenarios(cohorts.heldout)],
    )
    return {
        "attribute": attribute,
        "cohort_seed": seed,
        "date": day.isoformat(),
        "sizes": dict(zip(("history", "feedback", "heldout"), sizes, strict=True)),
        "budget": budget,
        "draw_seeds": list(seeds),
        "floor": floor,
        "targets": targets,
        "arms": arms,
        "heldout": heldout,
    }


# ----------------------------------------------------------------------------------------------
# steering: Markdown
# ----------------------------------------------------------------------------------------------

ARM_LABELS = {
    "unsteered": "unsteered (first N)",
    "population": "steered to population shares",
    "equal": "equal shares",
    "floor": "floor",
}


def _sent(row: Mapping[str, Any]) -> str:
    spread = "" if row["sent_min"] == row["sent_max"] else f" [{row['sent_min']}–{row['sent_max']}]"
    ratio = f"×{row['ratio']:.2f}" if math.isfinite(row["ratio"]) else "–"
    return f"{row['sent_mean']:.1f}{spread} ({100 * row['share']:.1f}%, {ratio})"


def _heldout_cell(found: Mapping[str, Any] | None) -> str:
    if not found:
        return "0 (no interval)"
    return f"{found['scenarios']} (±{found['half_width']:.2f})"


def _targets_table(
    targets: Mapping[str, Mapping[str, Mapping[str, float]]], labels: Mapping[str, str]
) -> list[str]:
    lines = [
        "Target shares given to steered_order → the share each got (mean over seeds; a group smaller than its target runs out):",
        "",
        "| group | " + " | ".join(labels[a] for a in targets) + " |",
        "|---" * (1 + len(targets)) + "|",
    ]
    for g in sorted(next(iter(targets.values()))["target"]):
        cells = [f"{100 * t['target'][g]:.1f}% → {100 * t['achieved'][g]:.1f}%" for t in targets.values()]
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return lines


def steering_markdown(report: Mapping[str, Any]) -> str:
    arms, floor = report["arms"], report["floor"]
    labels = {**ARM_LABELS, "floor": f"floor {floor:g}"}
    groups = sorted(set(arms["unsteered"]["groups"]) | set(report["heldout"]))
    head = " | ".join(f"{labels[a]}: sent (share, ×pop)" for a in arms)
    lines = [
        f"Feedback cohort {report['sizes']['feedback']} patients (cohort seed {report['cohort_seed']}, "
        f"{report['date']}), by {report['attribute']}; budget {report['budget']} patients; "
        f"steered arms drawn with seeds {' '.join(map(str, report['draw_seeds']))} (mean [min–max]).",
        "",
        f"| group | population (share) | held-out scenarios (±95% half-width) | {head} |",
        "|---" * (3 + len(arms)) + "|",
    ]
    for g in groups:
        pop = arms["unsteered"]["groups"].get(g)
        pop_cell = f"{pop['population']} ({100 * pop['population_share']:.1f}%)" if pop else "0"
        cells = [_sent(arms[a]["groups"][g]) if pop else "–" for a in arms]
        lines.append(
            f"| {g} | {pop_cell} | {_heldout_cell(report['heldout'].get(g))} | " + " | ".join(cells) + " |"
        )
    lines += ["", *_targets_table(report["targets"], labels)]
    small = arms["unsteered"]["smallest_group"]
    got = ", ".join(f"{labels[a]} {_sent(arms[a]['smallest_group'])}" for a in arms)
    count = f"{small['population']} patient{'s' * (small['population'] != 1)}"
    lines += ["", f"Smallest group {small['group']} ({count}): {got}."]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# loop: steering's effect on the aligned policy (two pipeline runs)
# ----------------------------------------------------------------------------------------------

LOOP_ARMS = ("unsteered", "steered")


def loop_overrides(attribute: str, budget: int) -> dict[str, dict[str, Any]]:
    """Each arm's pipeline config, paired: the panel posts one patient at a time in both. Same
    budget; unsteered sends the cohort's first N (a proportional sample: generate_patients draws
    every patient independently), steered draws N of the whole cohort toward equal shares."""
    arms: dict[str, dict[str, Any]] = {
        "unsteered": {"feedback_patients": budget},
        "steered": {"panel": {"steering": {"attribute": attribute, "patients": budget}}},
    }
    return {arm: merged(config, SEQUENTIAL) for arm, config in arms.items()}


def loop_sent(groups: Sequence[str], budget: int, panel_seed: int) -> dict[str, Counter[str]]:
    """Patients sent per group in each arm, drawn as PanelSession.selection draws them."""
    return {"unsteered": Counter(groups[:budget]), "steered": draw_counts(groups, {}, budget, panel_seed)}


def attribute_gap(rows: Sequence[Mapping[str, Any]], metric: str) -> dict[str, Any] | None:
    """The aligned policy's largest gap in `metric` between two of these groups (n >= min_n)."""
    values = [(r["group"], r["aligned"][metric]["value"]) for r in rows if r["in_gap"]]
    values = [(g, v) for g, v in values if v is not None and math.isfinite(v)]
    if len(values) < 2:
        return None
    (high, hv), (low, lv) = max(values, key=_second), min(values, key=_second)
    return {"gap": hv - lv, "high_group": high, "high_value": hv, "low_group": low, "low_value": lv}


def loop_arm(audited: Mapping[str, Any], attribute: str, sent: Counter[str]) -> dict[str, Any]:
    """One arm's figures from its audit report: overall, the attribute's groups, gaps and gate."""
    rows = [r for r in audited["groups"] if r["attribute"] == attribute]
    return {
        "pipeline_run_id": audited["pipeline_run_id"],
        "overall": audited["overall"],
        "groups": {r["group"]: {**r, "sent": sent.get(r["group"], 0)} for r in rows},
        "attribute_gaps": {m: attribute_gap(rows, m) for m in METRICS},
        "gaps": audited["gaps"],
        "gate": audited["gate"],
    }


def loop(
    attribute: str, work: Path, *, patients: int | None, seed: int, criteria: AcceptanceCriteria
) -> dict[str, Any]:
    """Run both arms (one pipeline each, in `work/<arm>`) and read back their subgroup tables."""
    config = PipelineConfig()
    cohorts = make_cohorts(load_world(), pipeline_sizes(config), seed, date.today())  # as the pipeline
    groups = [subgroup_of(p.facts).get(attribute, "unknown") for p in cohorts.feedback]
    budget = len(groups) // 2 if patients is None else patients
    if not 1 <= budget < len(groups):
        raise SystemExit(f"--patients must be between 1 and the cohort's {len(groups) - 1} patients")
    sent = loop_sent(groups, budget, config.panel.seed)
    arms = {}
    for arm, overrides in loop_overrides(attribute, budget).items():
        print(f"{arm}: running the pipeline (~8 min) …", file=sys.stderr, flush=True)
        run = run_pipeline(arm, overrides, work, seed, shared_key=f"fairness-loop-synthetic-only-{seed}")
        arms[arm] = {
            "seconds": round(run.seconds),
            **loop_arm(audit(run.home, criteria=criteria), attribute, sent[arm]),
        }
    return {
        "attribute": attribute,
        "seed": seed,
        "budget": budget,
        "feedback_cohort": len(groups),
        "criteria": {
            "max_subgroup_gap": criteria.max_subgroup_gap,
            "min_subgroup_n": criteria.min_subgroup_n,
        },
        "arms": arms,
    }


def _gap_cell(gap: Mapping[str, Any] | None) -> str:
    if gap is None:
        return "–"
    return f"{gap['gap']:.3f} ({gap['high_group']} {gap['high_value']:.3f} vs {gap['low_group']} {gap['low_value']:.3f})"


def loop_markdown(report: Mapping[str, Any]) -> str:
    arms, attribute = report["arms"], report["attribute"]
    groups = sorted(set().union(*(a["groups"] for a in arms.values())))
    lines = [
        f"Paired pipeline runs (seed {report['seed']}): {report['budget']} of {report['feedback_cohort']} "
        f"feedback patients judged, unsteered (the first N) or steered to equal shares of {attribute}.",
        "",
        f"| {attribute} | held-out n | sent: unsteered / steered | supervised concordance "
        "| aligned concordance: unsteered / steered | aligned unsafe: unsteered / steered |",
        "|---|---|---|---|---|---|",
    ]
    for g in groups:
        rows = [arms[a]["groups"].get(g) for a in LOOP_ARMS]
        first = next(r for r in rows if r)
        sent = " / ".join(str(r["sent"]) if r else "0" for r in rows)
        conc = " / ".join(_ci(r["aligned"]["concordance"]) if r else "–" for r in rows)
        unsafe = " / ".join(_ci(r["aligned"]["unsafe_rate"]) if r else "–" for r in rows)
        lines.append(
            f"| {g} | {first['n']} | {sent} | {_ci(first['supervised']['concordance'])} | {conc} | {unsafe} |"
        )
    overall = [arms[a]["overall"]["aligned"] for a in LOOP_ARMS]
    lines += [
        f"| all | {arms['unsteered']['overall']['n']} | {report['budget']} / {report['budget']} "
        f"| {_ci(arms['unsteered']['overall']['supervised']['concordance'])} "
        f"| {' / '.join(_ci(o['concordance']) for o in overall)} "
        f"| {' / '.join(_ci(o['unsafe_rate']) for o in overall)} |",
        "",
        f"| aligned policy | largest {attribute} gap, concordance | largest {attribute} gap, unsafe rate | gate |",
        "|---|---|---|---|",
    ]
    for arm in LOOP_ARMS:
        gaps, gate = arms[arm]["attribute_gaps"], arms[arm]["gate"]
        verdict = "pass" if all(g["passed"] for g in gate) else "fails"
        lines.append(
            f"| {arm} | {_gap_cell(gaps['concordance'])} | {_gap_cell(gaps['unsafe_rate'])} | {verdict} |"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------


def json_safe(value: Any) -> Any:
    """NaN and infinities as null: JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _criteria(path: Path | None) -> AcceptanceCriteria:
    try:
        return load_criteria(path)
    except (OSError, ValueError, TypeError) as err:
        raise SystemExit(f"cannot use criteria file {path}: {str(err).splitlines()[0]}") from None


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fairness.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    a = sub.add_parser(
        "audit",
        help="subgroup table, largest gaps and the promotion gate's verdict for one finished run",
        description="Read a finished pipeline run's eval metrics from HOME/mlflow.db and report subgroup "
        "concordance and unsafe rate (supervised and aligned, 95% bootstrap intervals), the largest gap "
        "per metric among groups with n >= min_subgroup_n, and the promotion gate's subgroup-gap verdict.",
    )
    a.add_argument("--home", type=Path, required=True, help="a CLINRLHF_HOME where a pipeline finished")
    a.add_argument(
        "--run-id", default=None, help="a pipeline run or one of its stages (default: newest finished)"
    )
    a.add_argument(
        "--criteria",
        type=Path,
        default=None,
        metavar="FILE",
        help="acceptance criteria JSON, as for `clinrlhf promote`",
    )
    a.add_argument(
        "--out", type=Path, default=Path("fairness_audit.json"), help="JSON output (default: %(default)s)"
    )
    s = sub.add_parser(
        "steering",
        help="who gets judged with and without steering, on the pipeline's feedback cohort (no training)",
        description="Draw the pipeline's feedback cohort and compare, for a budget of N patients, the "
        "patients sent per group: unsteered (the first N), steered to population shares, to equal "
        "shares, and to a floor.",
    )
    s.add_argument(
        "--patients", type=int, default=None, metavar="N", help="budget (default: half the feedback cohort)"
    )
    s.add_argument(
        "--attribute", choices=ATTRIBUTES, default="race", help="attribute to steer on (default: %(default)s)"
    )
    s.add_argument(
        "--seed",
        type=int,
        default=PipelineConfig().seed,
        help="the pipeline's cohort seed (default: %(default)s)",
    )
    s.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=list(DEFAULT_SEEDS),
        help="seeds of the steering draws (default: 0 1 2)",
    )
    s.add_argument(
        "--floor",
        type=float,
        default=0.1,
        help="least target share per group in the floor arm (default: %(default)s)",
    )
    s.add_argument(
        "--date",
        type=_date,
        default=DEFAULT_DATE,
        help="the cohorts' date; the pipeline uses its run's (default: %(default)s)",
    )
    s.add_argument(
        "--out", type=Path, default=Path("fairness_steering.json"), help="JSON output (default: %(default)s)"
    )
    lp = sub.add_parser(
        "loop",
        help="steering's effect on the aligned policy: two paired pipeline runs, unsteered and steered",
        description="Run the pipeline twice with the same budget of N feedback patients, unsteered (the "
        "cohort's first N) and steered to equal shares of ATTRIBUTE, paired (one patient at a time, one "
        "de-identification key), and compare the aligned policies' subgroup figures and gaps. ~15 min.",
    )
    lp.add_argument("--work", type=Path, required=True, help="one CLINRLHF_HOME per arm under here")
    lp.add_argument(
        "--attribute",
        choices=ATTRIBUTES,
        default="age_band",
        help="attribute to steer on (default: %(default)s)",
    )
    lp.add_argument(
        "--patients", type=int, default=None, metavar="N", help="budget (default: half the feedback cohort)"
    )
    lp.add_argument(
        "--seed", type=int, default=PipelineConfig().seed, help="pipeline seed (default: %(default)s)"
    )
    lp.add_argument(
        "--criteria", type=Path, default=None, metavar="FILE", help="acceptance criteria JSON for the gate"
    )
    lp.add_argument(
        "--out", type=Path, default=Path("fairness_loop.json"), help="JSON output (default: %(default)s)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "audit":
        report = audit(args.home, args.run_id, _criteria(args.criteria))
        text = audit_markdown(report)
    elif args.command == "loop":
        criteria = _criteria(args.criteria)
        report = loop(args.attribute, args.work, patients=args.patients, seed=args.seed, criteria=criteria)
        text = loop_markdown(report)
    else:
        if args.floor < 0:
            raise SystemExit("--floor must be at least 0")
        report = steering(
            args.attribute,
            patients=args.patients,
            seed=args.seed,
            seeds=args.seeds,
            floor=args.floor,
            day=args.date,
        )
        text = steering_markdown(report)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n")
    except OSError as err:
        raise SystemExit(f"cannot write {args.out}: {err.strerror}") from None
    print(text)
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
