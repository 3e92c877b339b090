"""Which entry points tune (decide on the validation cohort) and which report (on the test cohort).

Every script or function that draws the pipeline's cohorts is named here, in one of two registries,
with the reason it is where it is. A tuning entry point runs under `tuning_entry_point`, which seals
the test cohort (clinrlhf.pipeline.cohorts.sealed_test_cohort): reading it raises. The registry is
what tests/clinrlhf/pipeline/test_tuning.py checks, statically and at run time."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from clinrlhf.pipeline.cohorts import sealed_test_cohort

P = ParamSpec("P")
R = TypeVar("R")

TUNING_ENTRY_POINTS: dict[str, str] = {
    "benchmarks/ppo_frontier.py::main": "chooses PPO's iterations and KL target",
    "benchmarks/reward_diagnostics.py::main": "diagnoses the reward model to decide what to change",
    "benchmarks/ppo_gap.py::main": "chooses PPO's defaults on one finished run's policy and reward model",
    "clinrlhf/active/study.py::run": "compares acquisition rules (benchmarks/active_learning.py) to choose one",
    "benchmarks/fairness_runs.py::steering": "compares steering arms and floors to choose one",
    "benchmarks/age_band_gap.py::main": "diagnoses the age-band gap to decide how PPO's prompts are weighted",
    "benchmarks/reward_seeds.py::main": "chooses the reward model's settings and the feedback per run over seeds",
    "benchmarks/misses.py::main": "diagnoses where aligned policies miss, target by target, to decide what to change",
}
"""path::function (path from the repository root) → the decision it makes. Each function runs under
`tuning_entry_point(path)` and its module reads the validation cohort only."""

REPORTING_ENTRY_POINTS: dict[str, str] = {
    "clinrlhf/pipeline/run.py": "the run's own evaluation, once, on the test cohort",
    "clinrlhf/pipeline/single.py": "draws the history cohort only, to retrain SFT alone",
    "benchmarks/pipeline_runs.py": "counts the test scenarios behind the reported intervals",
    "benchmarks/finished_run.py": "re-draws a finished run's test (or validation) cohort for comparisons",
    "benchmarks/alignment_methods.py": "reports methods side by side on a finished run's test cohort",
    "benchmarks/poisoning_loop.py": "reports poisoned-panel variants",
    "benchmarks/policy_privacy.py": "reports the policy's privacy arms",
    "benchmarks/pipeline_seeds.py": "the multi-seed table on test; --cohort validation seals test",
    "benchmarks/peer_comparison.py": "reports methods on test; what it sweeps is chosen on validation",
}
"""Path → what it reports. These may read the test cohort; none may choose a setting from it."""


def tuning_entry_point(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run the decorated function with the test cohort sealed, naming `name` in the error."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @wraps(function)
        def sealed(*args: P.args, **kwargs: P.kwargs) -> R:
            with sealed_test_cohort(name):
                return function(*args, **kwargs)

        sealed.tuning_entry_point = name  # type: ignore[attr-defined]  # what the registry test reads
        return sealed

    return decorate
