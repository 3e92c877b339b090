"""benchmarks/fairness.py: the audit on a real SQLite MLflow store laid out by the pipeline's own
run functions (hand-made eval metrics, so every gap is known), and the steering comparison on a
small cohort drawn as the pipeline draws it."""

from __future__ import annotations

import importlib.util
import json
import random
import sqlite3
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import mlflow
import pytest

from clinrlhf.compliance.fairness_gaps import attribute_gap
from clinrlhf.eval.evaluate import subgroup_of
from clinrlhf.feedback.steering import SteeringConfig, steered_order
from clinrlhf.feedback.steering_arms import floor_shares
from clinrlhf.lineage.runs import configure_mlflow, stage_run
from clinrlhf.pipeline.cohorts import CohortSizes, make_cohorts, scenarios
from clinrlhf.settings import Settings
from clinrlhf.world.world import load_world

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "fairness.py"
_SPEC = importlib.util.spec_from_file_location("fairness", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
bench = importlib.util.module_from_spec(_SPEC)
sys.modules["fairness"] = bench  # dataclasses look their module up by name
_SPEC.loader.exec_module(bench)

import fairness_runs  # noqa: E402  (the script's sibling, on sys.path since it loaded)
from common import open_client  # noqa: E402
from fairness_report import audit_markdown  # noqa: E402
from fairness_runs import audit, find_chain, loop_overrides, loop_sent, steering  # noqa: E402

DAY = date(2025, 6, 1)

# (attribute, group) -> held-out n; 0-19 is below min_subgroup_n (30), and its extreme values would
# make every gap huge if it were counted.
N = {("sex", "female"): 100, ("sex", "male"): 100, ("age_band", "0-19"): 20}
N |= {("age_band", "20-39"): 120, ("age_band", "40-59"): 60}
AFTER = {
    "concordance": {"female": 0.80, "male": 0.70, "0-19": 0.30, "20-39": 0.78, "40-59": 0.72},
    "unsafe_rate": {"female": 0.02, "male": 0.05, "0-19": 0.50, "20-39": 0.03, "40-59": 0.04},
}
BEFORE = {
    "concordance": {"female": 0.60, "male": 0.40, "0-19": 0.10, "20-39": 0.55, "40-59": 0.50},
    "unsafe_rate": {"female": 0.10, "male": 0.30, "0-19": 0.90, "20-39": 0.20, "40-59": 0.12},
}


def eval_metrics(values: dict[str, dict[str, float]], prefix: str) -> dict[str, float]:
    """CONTRACT's names: overall, per subgroup, and bootstrap bounds 0.05 either side."""
    out = {f"{prefix}n": 200.0, f"{prefix}concordance": 0.75, f"{prefix}unsafe_rate": 0.035}
    for (attribute, group), n in N.items():
        out[f"{prefix}n.{attribute}.{group}"] = float(n)
        for metric, by_group in values.items():
            v = by_group[group]
            out[f"{prefix}{metric}.{attribute}.{group}"] = v
            out[f"{prefix}{metric}_ci_low.{attribute}.{group}"] = round(v - 0.05, 6)
            out[f"{prefix}{metric}_ci_high.{attribute}.{group}"] = round(v + 0.05, 6)
    return out


def record_run(after: dict[str, dict[str, float]], fail: bool = False) -> str:
    """A pipeline run with a nested eval run, through the pipeline's stage_run; `fail` ends it FAILED."""
    with stage_run("pipeline", nested=False) as parent:
        with stage_run("eval"):
            mlflow.log_metrics(eval_metrics(after, "eval.") | eval_metrics(BEFORE, "eval.before."))
        if fail:
            raise RuntimeError("the run broke after its eval")
    return parent.info.run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One home: an older run whose gaps pass the gate, a newer one whose concordance gap (0.18)
    fails it, and a newest run that FAILED (never audited by default)."""
    home = tmp_path_factory.mktemp("fairness") / "home"
    wider = {**AFTER, "concordance": {**AFTER["concordance"], "male": 0.62}}
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        configure_mlflow(Settings(home=home))
        passing, failing = record_run(AFTER), record_run(wider)
        with pytest.raises(RuntimeError):
            record_run(AFTER, fail=True)
    return {"home": home, "passing": passing, "failing": failing}


def gaps_of(report: dict) -> dict[tuple[str, str], dict]:
    return {(g["metric"], g["policy"]): g for g in report["gaps"]}


def test_audit_gaps_leave_out_the_small_group(store):
    report = audit(store["home"], store["passing"])
    gaps = gaps_of(report)
    # Hand-computed over groups with n >= 30: the sex gaps are the largest; with 0-19 counted the age
    # gaps would be 0.48, 0.47, 0.45 and 0.78.
    expected = {
        ("concordance", "aligned"): (0.10, "female", "male"),
        ("unsafe_rate", "aligned"): (0.03, "male", "female"),
        ("concordance", "supervised"): (0.20, "female", "male"),
        ("unsafe_rate", "supervised"): (0.20, "male", "female"),
    }
    for key, (gap, high, low) in expected.items():
        found = gaps[key]
        assert found["gap"] == pytest.approx(gap) and found["attribute"] == "sex"
        assert (found["high_group"], found["low_group"]) == (high, low)
    small = next(r for r in report["groups"] if r["group"] == "0-19")
    assert small["n"] == 20 and small["in_gap"] is False
    assert all(r["in_gap"] for r in report["groups"] if r["group"] != "0-19")
    assert [(g["name"], g["passed"]) for g in report["gate"]] == [
        ("subgroup gap in concordance", True),
        ("subgroup gap in unsafe rate", True),
    ]
    table = audit_markdown(report)
    assert "| age_band | 0-19 | 20 (n < 30: not in the gap) |" in table
    assert "| sex | female | 100 | 0.600 (0.550–0.650) | 0.800 (0.750–0.850) |" in table


def test_audit_takes_the_newest_finished_run_and_the_gate_flips(store):
    report = audit(store["home"])  # the FAILED run is newer, but never chosen by default
    assert report["pipeline_run_id"] == store["failing"] and report["pipeline_status"] == "FINISHED"
    gap = gaps_of(report)[("concordance", "aligned")]
    assert gap["gap"] == pytest.approx(0.18) and (gap["high_group"], gap["low_group"]) == ("female", "male")
    verdicts = {g["name"]: g for g in report["gate"]}
    assert verdicts["subgroup gap in concordance"]["passed"] is False
    assert verdicts["subgroup gap in concordance"]["measured"] == "0.180 (sex)"
    assert verdicts["subgroup gap in unsafe rate"]["passed"] is True
    assert "- subgroup gap in concordance: 0.180 (sex) (required <= 0.150): FAIL" in audit_markdown(report)


def test_audit_accepts_any_stage_of_a_run(store):
    eval_run = find_chain(open_client(store["home"]), store["passing"]).stage("eval")
    assert eval_run is not None
    assert audit(store["home"], eval_run.info.run_id)["pipeline_run_id"] == store["passing"]


def test_audit_cli_writes_the_table_and_the_json(store, tmp_path, capsys):
    out = tmp_path / "audit.json"
    argv = ["audit", "--home", str(store["home"]), "--run-id", store["passing"], "--out", str(out)]
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    assert "| concordance | aligned | 0.100 | sex | female 0.800 vs male 0.700 | yes |" in printed
    written = json.loads(out.read_text())
    assert written["gaps"] == json.loads(json.dumps(audit(store["home"], store["passing"])["gaps"]))
    assert written["eval_run_id"] != written["pipeline_run_id"]


def _one_line_exit(argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    message = str(exc.value.code)
    assert isinstance(exc.value.code, str) and "\n" not in message
    return message


def test_a_bad_home_or_run_exits_with_one_line(store, tmp_path):
    missing = _one_line_exit(
        ["audit", "--home", str(tmp_path / "nowhere"), "--out", str(tmp_path / "a.json")]
    )
    assert "no mlflow.db" in missing
    not_mlflow = tmp_path / "other"
    not_mlflow.mkdir()
    sqlite3.connect(not_mlflow / "mlflow.db").close()  # an empty SQLite file
    assert "not an MLflow store" in _one_line_exit(["audit", "--home", str(not_mlflow)])
    assert (not_mlflow / "mlflow.db").stat().st_size == 0  # refused before MLflow created tables in it
    assert "no MLflow run" in _one_line_exit(["audit", "--home", str(store["home"]), "--run-id", "f" * 32])
    assert not (tmp_path / "a.json").exists()


def test_floor_shares_fill_up_to_the_floor():
    assert floor_shares({"a": 80, "b": 15, "c": 5}, 0.1) == pytest.approx(
        {"a": 0.9 * 80 / 95, "b": 0.9 * 15 / 95, "c": 0.1}
    )
    # Raising c to 0.3 leaves 0.7 for a and b, which pushes b (0.064) under the floor too.
    assert floor_shares({"a": 90, "b": 9, "c": 1}, 0.3) == pytest.approx({"a": 0.4, "b": 0.3, "c": 0.3})
    with pytest.raises(ValueError):
        floor_shares({"a": 1, "b": 1, "c": 1}, 0.4)


def test_steered_order_reaches_unequal_targets():
    """Steering reaches the shares it is given (an earlier version settled at their square roots,
    60/30/10 -> 47/33/19, which this benchmark found)."""
    groups = ["a"] * 3000 + ["b"] * 1500 + ["c"] * 500
    random.Random(0).shuffle(groups)
    targets = {"a": 0.6, "b": 0.3, "c": 0.1}
    order = steered_order(groups, SteeringConfig(target_shares=targets, patients=600), random.Random(0))
    got = {g: n / 600 for g, n in Counter(groups[i] for i in order).items()}
    assert got == pytest.approx(targets, abs=0.03)


SMALL_SIZES = CohortSizes(feedback=300, validation=120)


@pytest.fixture(scope="module")
def small_steering() -> dict:
    return steering("race", patients=100, seed=0, seeds=(0, 1), floor=0.1, day=DAY, sizes=SMALL_SIZES)


def test_steering_raises_the_smallest_groups_share_within_the_budget(small_steering):
    report, arms = small_steering, small_steering["arms"]
    assert report["budget"] == 100 and set(arms) == {"unsteered", "population", "equal", "floor"}
    for arm in arms.values():
        rows = arm["groups"].values()
        assert sum(r["sent_mean"] for r in rows) == pytest.approx(100)
        assert sum(r["share"] for r in rows) == pytest.approx(1.0)
        assert all(r["sent_max"] <= r["population"] for r in rows)
    smallest = arms["unsteered"]["smallest_group"]["group"]
    assert arms["equal"]["smallest_group"]["group"] == smallest
    assert arms["equal"]["smallest_group"]["share"] > arms["unsteered"]["smallest_group"]["share"]
    # Every group under an equal share of the population gains, and the largest loses.
    groups = arms["unsteered"]["groups"]
    minorities = [g for g, r in groups.items() if r["population_share"] < 1 / len(groups)]
    assert len(minorities) >= 3
    assert all(arms["equal"]["groups"][g]["share"] > groups[g]["share"] for g in minorities)
    assert arms["equal"]["groups"]["white"]["share"] < groups["white"]["share"]
    # The unsteered arm is the cohort's first 100 patients, counted by the session's grouping.
    feedback = make_cohorts(load_world(), SMALL_SIZES, 0, DAY).feedback
    firsts = Counter(subgroup_of(p.facts).get("race", "unknown") for p in feedback[:100])
    assert {g: r["sent_mean"] for g, r in arms["unsteered"]["groups"].items() if r["sent_mean"]} == firsts


def test_steering_is_deterministic_and_counts_the_validation_scenarios(small_steering):
    again = steering("race", patients=100, seed=0, seeds=(0, 1), floor=0.1, day=DAY, sizes=SMALL_SIZES)
    assert again == small_steering
    validation = make_cohorts(load_world(), SMALL_SIZES, 0, DAY).validation
    counted = small_steering["validation"]
    assert sum(g["scenarios"] for g in counted.values()) == len(scenarios(validation))
    assert sum(g["patients"] for g in counted.values()) == len(validation)
    other = steering("race", patients=100, seed=0, seeds=(5,), floor=0.1, day=DAY, sizes=SMALL_SIZES)
    assert other["arms"]["unsteered"] == small_steering["arms"]["unsteered"]  # no draw in it


def test_steering_cli_and_a_floor_that_cannot_fit(tmp_path, capsys):
    out = tmp_path / "steering.json"
    assert bench.main(["steering", "--patients", "40", "--seeds", "0", "--out", str(out)]) == 0
    assert "budget 40 patients" in capsys.readouterr().out
    written = json.loads(out.read_text())
    from clinrlhf.pipeline.config import PipelineConfig

    assert written["budget"] == 40 and written["sizes"]["feedback"] == PipelineConfig().feedback_patients
    assert "exceeds 1" in _one_line_exit(["steering", "--floor", "0.5", "--out", str(tmp_path / "s.json")])


# ----------------------------------------------------------------------------------------------
# loop
# ----------------------------------------------------------------------------------------------


def test_loop_arms_are_paired_pipeline_configs_with_one_budget(tmp_path):
    from clinrlhf.pipeline.config import PipelineConfig, load_pipeline_config

    loaded = {}
    for arm, overrides in loop_overrides("age_band", 300).items():
        path = tmp_path / f"{arm}.json"
        path.write_text(json.dumps(overrides))
        loaded[arm] = load_pipeline_config(path)
    unsteered, steered = loaded["unsteered"], loaded["steered"]
    assert unsteered.panel.concurrency == steered.panel.concurrency == 1
    assert unsteered.feedback_patients == 300 and unsteered.panel.steering is None
    # The whole cohort offered, 300 of it drawn.
    assert steered.feedback_patients == PipelineConfig().feedback_patients
    assert steered.panel.steering == SteeringConfig(attribute="age_band", patients=300)  # equal shares


def test_loop_sent_is_the_panels_own_draw():
    groups = ["a"] * 80 + ["b"] * 15 + ["c"] * 5
    sent = loop_sent(groups, 30, panel_seed=0)
    assert sent["unsteered"] == Counter(groups[:30])
    order = steered_order(groups, SteeringConfig(patients=30), random.Random(0))
    assert sent["steered"] == Counter(groups[i] for i in order)
    assert sent["steered"]["c"] == 5 and sum(sent["steered"].values()) == 30  # the smallest sent in full


def test_attribute_gap_counts_only_groups_big_enough():
    def row(group, value, in_gap=True):
        return {"group": group, "in_gap": in_gap, "aligned": {"concordance": {"value": value}}}

    rows = [row("20-39", 0.8), row("80-89", 0.6), row("0-19", 0.1, in_gap=False), row("40-59", float("nan"))]
    gap = attribute_gap(rows, "concordance")
    assert gap == {
        "gap": pytest.approx(0.2),
        "high_group": "20-39",
        "high_value": 0.8,
        "low_group": "80-89",
        "low_value": 0.6,
    }
    assert attribute_gap(rows[:1], "concordance") is None


def test_loop_reads_each_arms_run_back(store, tmp_path, monkeypatch, capsys):
    """The pipeline itself is stubbed (a real run takes ~15 min): each arm "runs" by returning the
    fixture's home, so what is checked is the wiring: configs handed over, audit read back, report."""
    from pipeline_runs import PipelineRun  # the benchmarks' sibling module, on sys.path since bench loaded

    handed = {}

    def fake_run(name, overrides, work, seed, shared_key=None):
        handed[name] = (overrides, shared_key)
        return PipelineRun(store["home"], {}, 1.0)

    monkeypatch.setattr(fairness_runs, "run_pipeline", fake_run)
    out = tmp_path / "loop.json"
    argv = ["loop", "--work", str(tmp_path), "--attribute", "sex", "--patients", "200", "--out", str(out)]
    assert bench.main(argv) == 0
    assert list(handed) == ["unsteered", "steered"]
    assert handed["unsteered"][0]["feedback_patients"] == 200
    assert handed["steered"][1] == handed["unsteered"][1] is not None  # one key: the arms are paired
    report = json.loads(out.read_text())
    for arm in ("unsteered", "steered"):
        figures = report["arms"][arm]
        assert figures["pipeline_run_id"] == store["failing"]  # the newest finished run in the home
        assert figures["attribute_gaps"]["concordance"]["gap"] == pytest.approx(0.18)
        assert sum(g["sent"] for g in figures["groups"].values()) == 200
    printed = capsys.readouterr().out
    assert "| female | 100 |" in printed
    assert "| unsteered | 0.180 (female 0.800 vs male 0.620) |" in printed and "| fails |" in printed
