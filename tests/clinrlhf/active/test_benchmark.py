"""benchmarks/active_learning.py end to end in its quick mode, shrunk further: it runs, and writes
both strategies' concordance curves against growing numbers of judgments."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from clinrlhf.world.scoring import score as outcome
from clinrlhf.world.scoring import utility

BENCHMARK = Path(__file__).resolve().parents[3] / "benchmarks" / "active_learning.py"


@pytest.fixture(scope="module")
def benchmark():  # noqa: ANN201 - a module loaded from a file
    spec = importlib.util.spec_from_file_location("active_learning_benchmark", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_quick_mode_writes_both_curves(benchmark, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "al.json"
    tiny = ["--history-patients", "150", "--sft-epochs", "2", "--pool-patients", "60"]
    tiny += ["--heldout-patients", "20", "--rounds", "2", "--cap", "3", "--initial-cases", "10"]
    tiny += ["--reward-epochs", "1", "--passes", "2", "--target", "0.0"]
    returned = benchmark.main(["--quick", "--out", str(out), *tiny])
    written = json.loads(out.read_text())
    assert written["seeds"] and written["settings"]["dp"] is True
    assert "best-of-n" in written["what"] and "not a PPO run" in written["what"]
    assert list(written["seeds"][0]["curves"]) == ["random", "active", "random-valid"]
    for name in ("random", "active", "random-valid"):
        curve = written["seeds"][0]["curves"][name]
        counts = [point["judgments"] for point in curve]
        assert len(curve) == 3
        assert counts == sorted(counts) and len(set(counts)) == 3 and counts[0] > 0
        assert all(0.0 <= point["concordance"] <= 1.0 for point in curve)
        assert all(point["epsilon"] < 9 for point in curve)  # DP on: ε = 8 per model
        # After the first round: 15 cards a round (10 clinicians x cap 3 / 2 reviews per card).
        assert counts[1] - counts[0] == counts[2] - counts[1] == 30
    # Both start from the same random first round and the same reward model.
    first = [
        {k: v for k, v in c[0].items() if k != "seconds"} for c in written["seeds"][0]["curves"].values()
    ]
    assert first[0] == first[1] and first[0]["judgments"] == 20
    # A target of 0 is reached at the first point by both: the ratio is then exactly 1.
    assert written["judgments_to_target"]["random"] == written["judgments_to_target"]["active"]
    assert written["ratio_random_over_active"] == 1.0
    assert returned["ratios"] == {
        "random/active": 1.0,
        "random/random-valid": 1.0,
        "random-valid/active": 1.0,
    }


def test_thompson_cases_pair_two_valid_candidates_and_rank_by_doubt(benchmark) -> None:  # noqa: ANN001
    """The "thompson" strategy's round on hand-made cards and a two-member ensemble of tiny reward
    models: each card with two or more valid candidates shows two distinct ones of them, with their
    drugs; a card with fewer keeps its pair and is ranked last."""
    import torch

    from clinrlhf.active.selection import Case
    from clinrlhf.policy import PolicyConfig, build_policy, build_tokenizer
    from clinrlhf.reward.model import ScalarHeadModel
    from clinrlhf.text.prompt import render_prompt, render_response, vocabulary_corpus
    from clinrlhf.world.patients import generate_patients
    from clinrlhf.world.world import load_world

    world = load_world()
    tokenizer = build_tokenizer(vocabulary_corpus(world))
    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        config = PolicyConfig(n_layer=1, n_embd=32, n_head=2, n_positions=64)
        members.append(ScalarHeadModel(build_policy(config, tokenizer).transformer).eval())
    pool = benchmark.Pool([])
    for n, patient in enumerate(generate_patients(world, 6, seed=3)):
        target = patient.targets[0]
        prompt = render_prompt(world, patient.facts, target)
        treats = [render_response(world, d) for d in world.targets[target].drugs]
        case = Case(f"card{n}", prompt, (treats[0], treats[-1]), group=target)
        pool.cases.append(case)
        pool.options[case.id] = treats if n % 2 == 0 else treats[:1]  # odd cards: one candidate
    cases, scores, shown = benchmark.thompson_cases(world, members, tokenizer, pool, pool.cases, seed=0)
    pairable = {c.id for c in pool.cases if len(pool.options[c.id]) >= 2}
    assert set(shown) == pairable and len(pairable) >= 2
    for case, original, score in zip(cases, pool.cases, scores, strict=True):
        options = pool.options[case.id]
        if len(options) < 2:
            assert case == original and score == -1.0 and case.id not in shown
            continue
        a, b = case.responses
        assert a != b and a in options and b in options and 0.0 <= score < 1.0
        assert shown[case.id] == tuple(benchmark.parse_drug(world, r) for r in (a, b))
    again = benchmark.thompson_cases(world, members, tokenizer, pool, pool.cases, seed=0)
    assert again == (cases, scores, shown)


@pytest.mark.parametrize(
    ("strategy", "extra"), [("active", ["--uncertainty", "design", "--no-valid-first"]), ("oracle", [])]
)
def test_one_model_rules_ask_new_cards_each_round(
    benchmark, tmp_path: Path, strategy: str, extra: list[str]
) -> None:  # noqa: ANN001
    out = tmp_path / "rule.json"
    tiny = ["--history-patients", "150", "--sft-epochs", "2", "--pool-patients", "60"]
    tiny += ["--heldout-patients", "20", "--rounds", "2", "--cap", "3", "--initial-cases", "10"]
    tiny += ["--reward-epochs", "1", "--target", "0.0", "--strategies", strategy, *extra]
    written = benchmark.main(["--quick", "--out", str(out), *tiny])
    curve = written["seeds"][0]["curves"][strategy]
    assert [p["cards"] for p in curve] == [10, 25, 40]  # 15 new cards a round, none asked twice
    assert all(0.0 <= p["concordance"] <= 1.0 and p["epsilon"] < 9 for p in curve)


def test_oracle_asks_first_about_the_pairs_the_model_orders_wrongly(benchmark, world, monkeypatch) -> None:  # noqa: ANN001
    patient = benchmark.make_cohorts(world, (1, 1, 1), 0, benchmark.TODAY).feedback[0]
    target = patient.targets[0]
    utilities = {d: utility(outcome(world, patient.facts, target, d)) for d in sorted(world.drugs)}
    best, worst = max(utilities, key=utilities.__getitem__), min(utilities, key=utilities.__getitem__)
    assert utilities[best] > utilities[worst]
    # Stands in for a trained reward model, so that which pair it orders wrongly is known: it
    # prefers the response text "preferred" by a margin of 1.
    monkeypatch.setattr(
        benchmark,
        "score_texts",
        lambda model, tokenizer, prompts, responses: torch.tensor(
            [float(r == "preferred") for r in responses]
        ),
    )
    pool, cases = benchmark.Pool([]), []
    shown_pairs = [
        (best, worst, ("x", "preferred")),
        (best, worst, ("preferred", "x")),
        (best, best, ("x", "y")),
    ]
    for i, (a, b, texts) in enumerate(shown_pairs):
        cases.append(benchmark.Case(f"c{i}", "prompt", texts))
        pool.facts[f"c{i}"] = benchmark.Scenario(patient.facts, target)
        pool.drugs[f"c{i}"] = (a, b)
    wrong, right, equal = benchmark.oracle_scores(world, pool, None, None, cases)
    assert 1.5 < wrong < 2 and 1 < right < 1.5 and equal == 0.5
