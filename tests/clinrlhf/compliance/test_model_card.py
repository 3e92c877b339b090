"""The model card's Factors section names the groups the eval run logged, and no others."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from clinrlhf.compliance.evalmetrics import parse_eval_run
from clinrlhf.compliance.modelcard import _factors


def _evidence(metrics: dict[str, float]) -> Any:
    return cast(Any, SimpleNamespace(rates=parse_eval_run(metrics)))


def test_factors_name_race_and_ethnicity_when_the_eval_run_logged_them() -> None:
    rows = dict(
        _factors(
            _evidence(
                {
                    "eval.concordance": 0.8,
                    "eval.concordance.sex.female": 0.8,
                    "eval.concordance.age_band.40-59": 0.8,
                    "eval.concordance.race.white": 0.8,
                    "eval.concordance.ethnicity.hispanic": 0.8,
                }
            )
        ).items
    )
    assert "race (US Core" in rows["Groups evaluated"]
    assert "ethnicity (US Core" in rows["Groups evaluated"]
    assert rows["Not evaluated"].startswith("language and social determinants")


def test_factors_say_race_was_not_evaluated_when_the_records_lacked_it() -> None:
    rows = dict(
        _factors(_evidence({"eval.concordance.sex.male": 0.7, "eval.concordance.age_band.0-19": 0.7})).items
    )
    assert "race" not in rows["Groups evaluated"]
    assert rows["Not evaluated"].startswith("race, ethnicity, language")
