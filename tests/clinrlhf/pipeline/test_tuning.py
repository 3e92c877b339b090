"""No tuning entry point reads the test cohort.

Every module that draws the pipeline's cohorts is registered as tuning (decides on validation) or
reporting (reports test). A tuning entry point must run under `tuning_entry_point` (which makes
`Cohorts.test` raise at run time) and its module must not name the test cohort at all."""

from __future__ import annotations

import ast
import re
from datetime import date
from pathlib import Path

import pytest

from clinrlhf.pipeline.cohorts import CohortSizes, TestCohortSealedError, make_cohorts, scenarios
from clinrlhf.pipeline.tuning import REPORTING_ENTRY_POINTS, TUNING_ENTRY_POINTS, tuning_entry_point
from clinrlhf.world.world import load_world

ROOT = Path(__file__).resolve().parents[3]
COHORT_USE = re.compile(r"\b(make_cohorts|cohort_scenarios|count_test_scenarios)\(")
# What reading the test cohort looks like in source: the attribute, its size, or the helpers that
# re-draw a finished run's test cohort.
TEST_ATTRIBUTES = {"test", "sealed_test", "test_patients"}
TEST_HELPERS = {"count_test_scenarios"}


def _tuning_files() -> dict[str, str]:
    return {entry.split("::")[0]: entry.split("::")[1] for entry in TUNING_ENTRY_POINTS}


def _reads_of_test(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in TEST_ATTRIBUTES:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Name) and node.id in TEST_HELPERS:
            found.append(f"line {node.lineno}: {node.id}")
        elif isinstance(node, ast.Constant) and node.value in ("test", "cohort.test"):
            found.append(f"line {node.lineno}: {node.value!r}")
    return found


def test_every_module_that_draws_cohorts_is_registered_as_tuning_or_reporting() -> None:
    users = {
        str(path.relative_to(ROOT))
        for folder in ("clinrlhf", "benchmarks", "services")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "cohorts.py" and COHORT_USE.search(path.read_text(encoding="utf-8"))
    }
    registered = set(_tuning_files()) | set(REPORTING_ENTRY_POINTS)
    assert users - registered == set(), "classify these as tuning or reporting in clinrlhf.pipeline.tuning"
    assert not set(_tuning_files()) & set(REPORTING_ENTRY_POINTS)


@pytest.mark.parametrize("entry", sorted(TUNING_ENTRY_POINTS))
def test_a_tuning_entry_point_is_sealed_and_never_names_the_test_cohort(entry: str) -> None:
    path, function = entry.split("::")
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    assert _reads_of_test(tree) == [], f"{path} reads the test cohort"
    defined = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert function in defined, f"{path} has no function {function}"
    seals = [
        d.args[0].value
        for d in defined[function].decorator_list
        if isinstance(d, ast.Call)
        and getattr(d.func, "id", None) == "tuning_entry_point"
        and isinstance(d.args[0], ast.Constant)
    ]
    assert seals == [path], f"{entry} must run under @tuning_entry_point({path!r})"


def test_the_static_check_catches_a_script_that_reads_test() -> None:
    peeking = "cohorts = make_cohorts(w, s, 0, d)\nbest = choose(scenarios(cohorts.test))\n"
    assert _reads_of_test(ast.parse(peeking)) == ["line 2: .test"]
    assert _reads_of_test(ast.parse("n = count_test_scenarios(0)")) == ["line 1: count_test_scenarios"]
    assert _reads_of_test(ast.parse("x = cohort_scenarios(w, c, d, 'test')")) == ["line 1: 'test'"]


def test_at_run_time_a_tuning_entry_point_that_reads_test_raises_and_validation_is_open() -> None:
    @tuning_entry_point("benchmarks/a_sweep.py")
    def sweep(cohort: str) -> int:
        cohorts = make_cohorts(load_world(), CohortSizes(validation=3, test=3), 0, date(2025, 6, 1))
        return len(scenarios(getattr(cohorts, cohort)))

    assert sweep("validation") >= 3
    with pytest.raises(TestCohortSealedError, match="a_sweep.py"):
        sweep("test")
    assert sweep.tuning_entry_point == "benchmarks/a_sweep.py"  # type: ignore[attr-defined]
