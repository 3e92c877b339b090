"""How many clinician judgments does active learning save? Reward-model uncertainty vs random cases.

    python benchmarks/active_learning.py --out active_learning.json     # ~50 min, one thread
    python benchmarks/active_learning.py --strategies thompson --out t.json   # the same setup, one rule
    python benchmarks/active_learning.py --quick --out /tmp/al.json      # a small setting, < 3 minutes

What is fixed, once per seed: a supervised policy (a small GPT-2 trained on historical practice as
the pipeline's SFT stage trains it, or the one in `--policy DIR`); a *pool* of synthetic feedback
patients, each (patient, target) a card with two suggestions the policy made (clinrlhf.policy.
generate.suggest: its greedy answer and one sampled alternative); the pipeline's simulated panel
(clinrlhf.panel.clinicians.default_panel: seven careful but noisy clinicians, two biased, one
adversarial), reviewing in process, no server; and held-out patients.

What loops, per strategy, in rounds: train the reward model (the project's DP trainer,
clinrlhf.reward.trainer.train_reward, DP-SGD at its default ε = 8 unless `--no-dp`) on every
judgment so far; measure it; then choose the next round's cards and send them to the panel, each
card to `--reviews-per-card` clinicians, no clinician given more than `--cap` cards in a round.
"active" chooses the cards the reward model is least sure about (clinrlhf.active: an ensemble's
disagreement or MC dropout, `--uncertainty`, scored by `--method`; or, with `--uncertainty design`,
greedy D-optimal batches from one model's features, clinrlhf.active.design; with `--valid-first`,
the default, cards whose two suggestions are valid prescriptions first), "random" chooses at random,
"random-valid" takes valid-pair cards first at random (the ablation of that filter), and "thompson"
chooses the card's pair as well: for each card, double Thompson sampling (clinrlhf.active.pairs)
among the policy's distinct valid candidates for it (`--candidates` samples, one per drug), cards
ranked by how much the ensemble's members disagree about their best candidate. "oracle" is a
reference, not a rule anyone can run: it reads the world's answer and asks about the cards the
current reward model orders wrongly, most confidently wrong first (clinrlhf never does this; it
bounds what choosing cards by the model's errors could buy).
Every strategy starts from the same random first round, and a clinician's review of a card is the
same draw under each (its random stream is seeded by the seed, the card and the clinician).

What is measured: the held-out concordance of the *best-of-n policy*: for each held-out
(patient, target), `--candidates` responses sampled from the supervised policy (one fixed draw per
seed, the same for both strategies), the one the reward model scores highest, scored by the world
(concordant or not). This is the reward model's choice among the policy's samples, not a PPO run:
a PPO run per point of the curve would take hours on 2 cores. Its ceiling is the share of
scenarios where any candidate is concordant ("oracle"); picking a candidate at random gives the
floor ("random pick"). Reported per strategy: the concordance curve against judgments collected,
the judgments needed to first reach `--target` and the ratio random / active, and the same for
every target on a 0.02 grid (`by_target`), so no single target has to be chosen in advance.

A judgment is one clinician's review of one card: a pairwise choice with two ratings and, when
both suggestions are wrong, sometimes a correction, stored as the review page stores them
(clinrlhf.reward.simulated).

Privacy, honestly: each reward model is (ε, δ)-DP with respect to its training pairs, as reported.
The loop trains one model per round (and K per round with an ensemble) on overlapping data and acts
on them, so the selection process as a whole composes those mechanisms; that total is not
accounted here. MC dropout needs one model per round, an ensemble K.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.active.design import design_scores, fisher_weighted
from clinrlhf.active.ensemble import train_ensemble
from clinrlhf.active.pairs import best_disagreement, thompson_pair
from clinrlhf.active.selection import (
    Assignment,
    Case,
    GroupLimit,
    proportional_quotas,
    relevant_first,
    select_random,
    select_uncertain,
)
from clinrlhf.active.uncertainty import (
    METHODS,
    ensemble_rewards,
    feature_differences,
    mc_dropout_rewards,
    pair_uncertainty,
)
from clinrlhf.eval.evaluate import Scenario, evaluate_policy
from clinrlhf.feedback.judgment import Judgment
from clinrlhf.panel.clinicians import Clinician, default_panel, review_pair
from clinrlhf.pipeline.cohorts import make_cohorts, practice_examples, scenarios
from clinrlhf.policy import PolicyConfig, build_policy, build_tokenizer, load_policy
from clinrlhf.policy.generate import sample, suggest
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.evaluate import score_texts
from clinrlhf.reward.model import ScalarHeadModel
from clinrlhf.reward.pairs import pairs_from_judgments
from clinrlhf.sft.config import SFTConfig
from clinrlhf.sft.trainer import train_sft
from clinrlhf.text.prompt import (
    parse_drug,
    parse_prescription,
    render_prompt,
    render_response,
    vocabulary_corpus,
)
from clinrlhf.world.scoring import Outcome, score, utility
from clinrlhf.world.world import World, load_world
from privacy.dp.opacus_config import DPConfig

TODAY = date(2025, 6, 1)
DEID_KEY = b"active-learning-benchmark"
_PREFERRED = {"a": 0, "b": 1, "tie": None}


@dataclass(frozen=True)
class Settings:
    history_patients: int = 3000
    """Historical-practice patients the supervised policy imitates (the pipeline's default)."""
    pool_patients: int = 3000
    """Synthetic feedback patients: one card per (patient, target) with two distinct suggestions."""
    heldout_patients: int = 1500
    """Held-out patients whose scenarios measure the best-of-n policy."""
    policy_layers: int = 2
    policy_width: int = 64
    sft_epochs: int = 24
    """The pipeline's default (clinrlhf.sft.config.SFTConfig.epochs): fewer leave the policy blind to
    the patient-specific cases, and the best-of-n candidates with little to choose from."""
    candidates: int = 16
    """n of best-of-n: samples of the supervised policy per held-out scenario."""
    rounds: int = 5
    """Rounds of selection after the first, random one."""
    cap: int = 50
    """Most cards one clinician reviews in one round (the workload cap)."""
    reviews_per_card: int = 2
    initial_cases: int = 250
    """Cards of the first round, chosen at random for both strategies."""
    reward_epochs: int = 10
    reward_batch_size: int = 256
    dp: bool = True
    uncertainty: str = "ensemble"
    """"ensemble" (K DP reward models), "mc-dropout" (one model, dropout on at scoring) or "design"
    (one model: greedy D-optimal batches from its features, clinrlhf.active.design; `method` unused)."""
    method: str = "std"
    """How the samples become one score per card (clinrlhf.active.uncertainty.METHODS)."""
    members: int = 3
    ensemble_fraction: float = 0.5
    """Share of the cases each ensemble member after the first trains on (the first trains on all)."""
    passes: int = 16
    dropout: float = 0.1
    explore: float = 0.0
    """Share of each active round chosen at random instead (select_uncertain's `explore`)."""
    max_per_group: int | None = None
    """Most cards of one target condition per round (batch diversity); None: no limit."""
    stratify: bool = False
    """Active rounds take the most uncertain cards within each target, in proportion to the targets'
    shares of the remaining pool (clinrlhf.active.selection.proportional_quotas)."""
    seeds: tuple[int, ...] = (0,)
    target: float = 0.70
    valid_first: bool = True
    """Active rounds take cards whose two suggestions are both valid prescriptions first (the only
    comparisons best-of-n ever makes; clinrlhf.active.selection.relevant_first), then the rest."""
    strategies: tuple[str, ...] = ("random", "active", "random-valid")


FULL = Settings()
QUICK = Settings(
    history_patients=1000,
    pool_patients=300,
    heldout_patients=150,
    policy_layers=1,
    policy_width=32,
    sft_epochs=20,
    candidates=4,
    rounds=3,
    cap=8,
    initial_cases=40,
    reward_epochs=3,
    members=2,
    seeds=(0,),
    target=0.5,
)


@dataclass
class Pool:
    cases: list[Case]
    facts: dict[str, Scenario] = field(default_factory=dict)  # case id -> (facts, target)
    drugs: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    patients: dict[str, str] = field(default_factory=dict)  # case id -> patient pseudonym
    valid: dict[str, bool] = field(default_factory=dict)  # case id -> both suggestions valid prescriptions
    options: dict[str, list[str]] = field(default_factory=dict)
    """Case id -> the policy's distinct valid prescriptions for it, one per drug (for "thompson")."""


@dataclass
class Heldout:
    scenarios: list[Scenario]
    prompts: list[str]
    candidates: list[list[str]]


# --------------------------------------------------------------------------- the fixed parts


def supervised_policy(
    world: World, history: list, settings: Settings, seed: int, policy_dir: Path | None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The policy in `policy_dir`, or one trained as the pipeline's SFT stage trains it."""
    if policy_dir is not None:
        return load_policy(policy_dir)
    tokenizer = build_tokenizer(vocabulary_corpus(world))
    torch.manual_seed(seed)
    config = PolicyConfig(
        n_layer=settings.policy_layers,
        n_embd=settings.policy_width,
        n_head=max(1, settings.policy_width // 16),
    )
    model = build_policy(config, tokenizer)
    examples = practice_examples(world, history, DEID_KEY, TODAY, seed)
    train_sft(model, tokenizer, examples, SFTConfig(epochs=settings.sft_epochs, seed=seed))
    return model.eval(), tokenizer


def build_pool(
    world: World, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, patients: list, seed: int
) -> Pool:
    """One card per (patient, target) on which the policy suggests two distinct drugs."""
    generator, pool = torch.Generator().manual_seed(seed), Pool([])
    for n, patient in enumerate(patients):
        for target in patient.targets:
            prompt = render_prompt(world, patient.facts, target)
            shown = suggest(model, tokenizer, world, prompt, n=2, generator=generator)
            if len(shown) < 2:
                continue
            case = Case(f"card{n}-{target}", prompt, (shown[0].text, shown[1].text), group=target)
            pool.cases.append(case)
            pool.facts[case.id] = Scenario(patient.facts, target)
            pool.drugs[case.id] = (shown[0].drug, shown[1].drug)
            pool.patients[case.id] = f"patient{n}"
            pool.valid[case.id] = all(
                parse_prescription(world, prompt, r) is not None for r in case.responses
            )
    return pool


def heldout_candidates(
    world: World,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    patients: list,
    n: int,
    seed: int,
) -> Heldout:
    held = scenarios(patients)
    prompts = [render_prompt(world, s.facts, s.target) for s in held]
    generator, candidates = torch.Generator().manual_seed(seed), []
    for start in range(0, len(prompts), 64):
        chunk = prompts[start : start + 64]
        texts = sample(model, tokenizer, [p for p in chunk for _ in range(n)], generator=generator).texts
        candidates += [texts[i * n : (i + 1) * n] for i in range(len(chunk))]
    return Heldout(held, prompts, candidates)


def pool_options(
    world: World, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, pool: Pool, n: int, seed: int
) -> None:
    """For each card, the candidates "thompson" may pair: the card's two suggestions and `n` more
    samples of the policy, kept if they are valid prescriptions for the problem (the only kind the
    service would show), one text per drug (two sigs of one drug are the same question)."""
    generator = torch.Generator().manual_seed(seed + 1)
    for start in range(0, len(pool.cases), 64):
        chunk = pool.cases[start : start + 64]
        prompts = [c.prompt for c in chunk for _ in range(n)]
        texts = sample(model, tokenizer, prompts, generator=generator).texts
        for i, case in enumerate(chunk):
            by_drug: dict[str, str] = {}
            for text in [*case.responses, *texts[i * n : (i + 1) * n]]:
                drug = parse_drug(world, text)
                if drug and drug not in by_drug and parse_prescription(world, case.prompt, text) is not None:
                    by_drug[drug] = text
            pool.options[case.id] = list(by_drug.values())


def concordant(world: World, s: Scenario, text: str) -> bool:
    return score(world, s.facts, s.target, parse_drug(world, text)) is Outcome.CONCORDANT


def eligible(world: World, prompt: str, candidates: Sequence[str]) -> list[int]:
    """The candidates the service could turn into a MedicationRequest for the problem (formulary drug,
    formulary sig, treats the target: parse_prescription), or all of them when none can. The check is
    a property of the formulary, never of the patient, as in PPO's reward
    (clinrlhf.pipeline.policy_reward): the reward model has only seen valid prescriptions, so its
    score of anything else is extrapolation."""
    valid = [i for i, c in enumerate(candidates) if parse_prescription(world, prompt, c) is not None]
    return valid or list(range(len(candidates)))


def baselines(world: World, held: Heldout) -> dict[str, float]:
    """What any reranker of these candidates gets: a random eligible one (floor), the best (oracle)."""
    floor = ceiling = 0.0
    for s, prompt, cs in zip(held.scenarios, held.prompts, held.candidates, strict=True):
        hits = [concordant(world, s, cs[i]) for i in eligible(world, prompt, cs)]
        floor += sum(hits) / len(hits)
        ceiling += any(hits)
    return {"random_pick": floor / len(held.scenarios), "oracle": ceiling / len(held.scenarios)}


def best_of_n(
    world: World, reward: ScalarHeadModel, tokenizer: PreTrainedTokenizerBase, held: Heldout
) -> dict[str, float]:
    """Concordance and unsafe rate of the eligible candidate the reward model scores highest."""
    flat_prompts = [p for p, cs in zip(held.prompts, held.candidates, strict=True) for _ in cs]
    flat = [c for cs in held.candidates for c in cs]
    rewards = score_texts(reward, tokenizer, flat_prompts, flat).tolist()
    good = unsafe = at = 0
    for s, prompt, cs in zip(held.scenarios, held.prompts, held.candidates, strict=True):
        pick = cs[max(eligible(world, prompt, cs), key=lambda i: rewards[at + i])]
        at += len(cs)
        outcome = score(world, s.facts, s.target, parse_drug(world, pick))
        good += outcome is Outcome.CONCORDANT
        unsafe += outcome is Outcome.UNSAFE
    return {"concordance": good / len(held.scenarios), "unsafe_rate": unsafe / len(held.scenarios)}


# --------------------------------------------------------------------------- one round's parts


Drugs = dict[str, tuple[str | None, str | None]]


def review(
    world: World,
    panel: dict[str, Clinician],
    pool: Pool,
    chosen: list[Assignment],
    seed: int,
    shown: Drugs | None = None,
) -> list[Judgment]:
    """The panel's judgments of the chosen cards, as the review page stores them. `shown`: the drugs
    of cards whose pair was chosen anew ("thompson"); other cards show the pool's pair."""
    out = []
    for a in chosen:
        s, (drug_a, drug_b) = pool.facts[a.case.id], (shown or {}).get(a.case.id, pool.drugs[a.case.id])
        patient = pool.patients[a.case.id]
        for clinician in a.clinicians:
            digest = hashlib.sha256(f"{seed}\x00{a.case.id}\x00{clinician}".encode()).digest()
            rng = random.Random(int.from_bytes(digest[:8], "big"))
            r = review_pair(world, panel[clinician], s.facts, s.target, drug_a, drug_b, rng)
            base = Judgment("pairwise", a.case.id, patient, clinician, a.case.prompt, a.case.responses)
            out.append(replace(base, preferred=_PREFERRED[r.choice]))
            out.append(replace(base, kind="rating", ratings=(r.rating_a, r.rating_b)))
            if r.correction is not None:
                out.append(replace(base, kind="correction", correction=render_response(world, r.correction)))
    return out


def composition(world: World, pool: Pool, chosen: list[Assignment], shown: Drugs | None = None) -> dict:
    """What a round asked about, for the report only (selection never sees the world): the share of
    its cards whose two suggestions differ in the world's utility, the share whose two suggestions
    are both valid prescriptions, and its cards per target."""
    differ = valid = 0
    by_target = dict.fromkeys(sorted(world.targets), 0)
    for a in chosen:
        s, drugs = pool.facts[a.case.id], (shown or {}).get(a.case.id, pool.drugs[a.case.id])
        differ += len({utility(score(world, s.facts, s.target, d)) for d in drugs}) > 1
        valid += a.case.id in (shown or {}) or pool.valid[a.case.id]
        by_target[s.target] += 1
    n = max(len(chosen), 1)
    return {
        "added_cards": len(chosen),
        "added_utility_differs_share": differ / n,
        "added_valid_pair_share": valid / n,
        "added_cards_by_target": by_target,
    }


def design_of(
    model: ScalarHeadModel,
    tokenizer: PreTrainedTokenizerBase,
    asked: list[Case],
    cases: list[Case],
    picks: int,
) -> list[float]:
    """Greedy D-optimal scores of `cases` given the pairs already `asked` (Fisher-weighted by the
    model's own preference probabilities), the first `picks` above the rest."""

    def differences(chosen: list[Case]) -> torch.Tensor:
        d = feature_differences(
            model,
            tokenizer,
            [c.prompt for c in chosen],
            [c.responses[0] for c in chosen],
            [c.responses[1] for c in chosen],
        )
        return fisher_weighted(d, model.head.weight.detach().squeeze(0))

    return design_scores(differences(cases), differences(asked), picks)


def uncertainty_of(
    members: list[ScalarHeadModel],
    tokenizer: PreTrainedTokenizerBase,
    cases: list[Case],
    settings: Settings,
    seed: int,
) -> list[float]:
    prompts = [c.prompt for c in cases]
    a, b = [c.responses[0] for c in cases], [c.responses[1] for c in cases]
    if settings.uncertainty == "ensemble":
        ra, rb = (
            ensemble_rewards(members, tokenizer, prompts, a),
            ensemble_rewards(members, tokenizer, prompts, b),
        )
    else:
        both = mc_dropout_rewards(
            members[0],
            tokenizer,
            prompts + prompts,
            a + b,
            passes=settings.passes,
            rate=settings.dropout,
            seed=seed,
        )
        ra, rb = both[:, : len(cases)], both[:, len(cases) :]
    return pair_uncertainty(ra, rb, settings.method).tolist()  # type: ignore[arg-type]


def thompson_cases(
    world: World,
    members: list[ScalarHeadModel],
    tokenizer: PreTrainedTokenizerBase,
    pool: Pool,
    remaining: list[Case],
    seed: int,
) -> tuple[list[Case], list[float], Drugs]:
    """Each remaining card with its pair chosen by double Thompson sampling over the ensemble's
    rewards of the card's candidates (clinrlhf.active.pairs), scored by how unsure the ensemble is of
    its best candidate (then by the pair's probability std); cards with fewer than two valid
    candidates keep their pair and go last."""
    rng, spans, prompts, texts = random.Random(seed), [], [], []
    for case in remaining:
        options = pool.options.get(case.id, [])
        spans.append((len(texts), len(options)))
        prompts += [case.prompt] * len(options)
        texts += options
    rewards = ensemble_rewards(members, tokenizer, prompts, texts)
    cases, scores, shown = [], [], {}
    for case, (start, k) in zip(remaining, spans, strict=True):
        if k < 2:
            cases.append(case)
            scores.append(-1.0)
            continue
        block = rewards[:, start : start + k]
        i, j = thompson_pair(block, rng)
        a, b = pool.options[case.id][i], pool.options[case.id][j]
        cases.append(replace(case, responses=(a, b)))
        spread = torch.sigmoid(block[:, i] - block[:, j]).std(unbiased=False).item()
        scores.append(best_disagreement(block) + 0.01 * spread)  # disagreement first, spread breaks ties
        shown[case.id] = (parse_drug(world, a), parse_drug(world, b))
    return cases, scores, shown


def oracle_scores(
    world: World, pool: Pool, model: ScalarHeadModel, tokenizer: PreTrainedTokenizerBase, cases: list[Case]
) -> list[float]:
    """Per card, for the "oracle" reference only (it reads the world, which no selection rule may):
    pairs of unequal utility score in (1, 2), higher the more confidently the model orders them
    wrongly (σ of the margin by which it prefers the worse one); pairs of equal utility 0.5."""
    prompts = [c.prompt for c in cases]
    margins = score_texts(model, tokenizer, prompts, [c.responses[0] for c in cases]) - score_texts(
        model, tokenizer, prompts, [c.responses[1] for c in cases]
    )
    scores = []
    for case, margin in zip(cases, margins.tolist(), strict=True):
        s = pool.facts[case.id]
        u_a, u_b = (utility(score(world, s.facts, s.target, d)) for d in pool.drugs[case.id])
        wrong_by = -margin if u_a > u_b else margin  # > 0: the model prefers the worse suggestion
        scores.append(0.5 if u_a == u_b else 1 + 1 / (1 + math.exp(-wrong_by)))
    return scores


def run_strategy(
    name: str,
    world: World,
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pool: Pool,
    held: Heldout,
    settings: Settings,
    seed: int,
    log: Callable[[str], None],
) -> list[dict]:
    panel = {c.id: c for c in default_panel()}
    clinicians = sorted(panel)
    config = RewardConfig(
        epochs=settings.reward_epochs,
        batch_size=settings.reward_batch_size,
        dp=DPConfig(enabled=settings.dp),
        seed=seed,
    )
    ensemble = name == "thompson" or (name == "active" and settings.uncertainty == "ensemble")
    members = settings.members if ensemble else 1
    shown: Drugs = {}
    first = select_random(
        pool.cases,
        None,
        clinicians,
        cap=settings.cap,
        reviews_per_card=settings.reviews_per_card,
        max_cases=settings.initial_cases,
        seed=seed,
    )
    judgments = review(world, panel, pool, first, seed)
    asked = {a.case.id for a in first}
    added = composition(world, pool, first)
    curve = []
    for round_ in range(settings.rounds + 1):
        started = time.monotonic()
        pairs = pairs_from_judgments(judgments, world=world)
        results = train_ensemble(
            pairs, policy.transformer, tokenizer, config, members, fraction=settings.ensemble_fraction
        )
        models = [r.model for r in results]
        measured = best_of_n(world, models[0], tokenizer, held)
        reviews = sum(j.kind == "pairwise" for j in judgments)
        curve.append(
            {
                "round": round_,
                "judgments": reviews,
                "cards": len(asked),
                **added,
                "pairs": len(pairs),
                **measured,
                "epsilon": results[0].epsilon,
                "delta": results[0].delta,
                "seconds": 0.0,
            }
        )
        if round_ < settings.rounds:
            remaining = [c for c in pool.cases if c.id not in asked]
            common = {
                "cap": settings.cap,
                "reviews_per_card": settings.reviews_per_card,
                "seed": seed * 1000 + round_,
            }
            valid = [pool.valid[c.id] for c in remaining]
            if name == "active":
                per_round = settings.cap * len(clinicians) // settings.reviews_per_card
                if settings.uncertainty == "design":
                    done = [c for c in pool.cases if c.id in asked]
                    scores = design_of(models[0], tokenizer, done, remaining, per_round)
                else:
                    scores = uncertainty_of(models, tokenizer, remaining, settings, seed * 1000 + round_)
                if settings.valid_first:
                    scores = relevant_first(scores, valid)
                quotas: GroupLimit = settings.max_per_group
                if settings.stratify:
                    quotas = proportional_quotas(remaining, per_round)
                chosen = select_uncertain(
                    remaining, scores, clinicians, max_per_group=quotas, explore=settings.explore, **common
                )
            elif name == "thompson":  # cards by the ensemble's doubt about its best, pairs by Thompson
                cases, scores, pairs_shown = thompson_cases(
                    world, models, tokenizer, pool, remaining, seed * 1000 + round_
                )
                chosen = select_uncertain(
                    cases, scores, clinicians, max_per_group=settings.max_per_group, **common
                )
                shown |= {a.case.id: pairs_shown[a.case.id] for a in chosen if a.case.id in pairs_shown}
            elif name == "oracle":  # a reference that reads the world: the model's own errors first
                scores = oracle_scores(world, pool, models[0], tokenizer, remaining)
                chosen = select_uncertain(
                    remaining, scores, clinicians, max_per_group=settings.max_per_group, **common
                )
            elif name == "random-valid":  # the ablation: valid cards first, at random within each kind
                flags = [float(v) for v in valid]
                chosen = select_uncertain(
                    remaining, flags, clinicians, max_per_group=settings.max_per_group, **common
                )
            else:
                chosen = select_random(
                    remaining, None, clinicians, max_per_group=settings.max_per_group, **common
                )
            judgments += review(world, panel, pool, chosen, seed, shown)
            asked |= {a.case.id for a in chosen}
            added = composition(world, pool, chosen, shown)
        curve[-1]["seconds"] = round(time.monotonic() - started, 1)
        log(
            f"  {name:>12} round {round_}: {reviews:>5} judgments, {len(pairs):>5} pairs, "
            f"concordance {measured['concordance']:.3f}, unsafe {measured['unsafe_rate']:.3f} "
            f"({curve[-1]['seconds']:.0f} s)"
        )
    return curve


# --------------------------------------------------------------------------- figures


def judgments_to_reach(curve: Sequence[dict], target: float) -> int | None:
    """Judgments at the first point of the curve whose concordance is at least `target`."""
    return next((p["judgments"] for p in curve if p["concordance"] >= target), None)


def mean_curve(curves: Sequence[Sequence[dict]]) -> list[dict]:
    return [
        {
            "judgments": statistics.mean(p["judgments"] for p in points),
            "concordance": statistics.mean(p["concordance"] for p in points),
            "unsafe_rate": statistics.mean(p["unsafe_rate"] for p in points),
        }
        for points in zip(*curves, strict=True)
    ]


def needs_by_target(curves: dict[str, Sequence[dict]], step: float = 0.02) -> dict[str, dict]:
    """Judgments each strategy needs to first reach every target on a grid from the lowest to the
    highest concordance any curve reached: the whole trade-off, not one chosen target."""
    reached = [p["concordance"] for c in curves.values() for p in c]
    low, high = math.floor(min(reached) / step) * step, max(reached)
    grid = [round(low + i * step, 4) for i in range(int((high - low) / step) + 1)]
    table = {}
    for target in grid:
        needs = {name: judgments_to_reach(c, target) for name, c in curves.items()}
        table[f"{target:.2f}"] = {"judgments": needs, "ratios": ratios(needs)}
    return table


def ratio(random_needs: int | float | None, active_needs: int | float | None) -> float | None:
    """How many times fewer judgments the second needed; None where either never reached the target."""
    if random_needs is None or active_needs is None or active_needs == 0:
        return None
    return random_needs / active_needs


RATIOS = (
    ("random", "active"),
    ("random", "random-valid"),
    ("random-valid", "active"),
    ("random", "thompson"),
    ("random", "oracle"),
)


def ratios(needs: dict[str, int | float | None]) -> dict[str, float | None]:
    """random/active (the headline), random/random-valid (what putting valid cards first buys on its
    own) and random-valid/active (what the reward model's uncertainty adds on top)."""
    return {f"{a}/{b}": ratio(needs[a], needs[b]) for a, b in RATIOS if a in needs and b in needs}


def run(settings: Settings, policy_dir: Path | None = None, log: Callable[[str], None] = print) -> dict:
    world = load_world()
    per_seed = []
    for seed in settings.seeds:
        started = time.monotonic()
        cohorts = make_cohorts(
            world, (settings.history_patients, settings.pool_patients, settings.heldout_patients), seed, TODAY
        )
        policy, tokenizer = supervised_policy(world, cohorts.history, settings, seed, policy_dir)
        pool = build_pool(world, policy, tokenizer, cohorts.feedback, seed)
        held = heldout_candidates(world, policy, tokenizer, cohorts.heldout, settings.candidates, seed)
        if "thompson" in settings.strategies:
            pool_options(world, policy, tokenizer, pool, settings.candidates, seed)
        base = baselines(world, held)
        floor, ceiling = base["random_pick"], base["oracle"]
        greedy = evaluate_policy(policy, tokenizer, world, held.scenarios).concordance
        log(
            f"seed {seed}: {len(pool.cases)} cards in the pool, {len(held.scenarios)} held-out scenarios; "
            f"supervised greedy {greedy:.3f}, best-of-{settings.candidates} random pick {floor:.3f}, "
            f"oracle {ceiling:.3f} ({time.monotonic() - started:.0f} s)"
        )
        curves = {
            name: run_strategy(name, world, policy, tokenizer, pool, held, settings, seed, log)
            for name in settings.strategies
        }
        needs = {name: judgments_to_reach(c, settings.target) for name, c in curves.items()}
        per_seed.append(
            {
                "seed": seed,
                "pool_cards": len(pool.cases),
                "heldout_scenarios": len(held.scenarios),
                "supervised_greedy_concordance": greedy,
                "random_pick_concordance": floor,
                "oracle_concordance": ceiling,
                "curves": curves,
                "judgments_to_target": needs,
                "ratios": ratios(needs),
            }
        )
    means = {name: mean_curve([s["curves"][name] for s in per_seed]) for name in settings.strategies}
    needs = {name: judgments_to_reach(c, settings.target) for name, c in means.items()}
    return {
        "what": "held-out concordance of the best-of-n policy: the reward model's choice among n samples "
        "of the supervised policy (not a PPO run)",
        "reward_training": "DP-SGD (project trainer), per-model epsilon as reported"
        if settings.dp
        else "non-private (--no-dp)",
        "settings": asdict(settings),
        "seeds": per_seed,
        "mean_curves": means,
        "target": settings.target,
        "judgments_to_target": needs,
        "by_target": needs_by_target(means),
        "ratios": ratios(needs),
        "ratio_random_over_active": ratio(needs.get("random"), needs.get("active")),
    }


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="a small setting (tiny policy, 3 rounds): < 2 minutes"
    )
    parser.add_argument(
        "--policy", type=Path, default=None, help="a supervised policy dir instead of training one"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("active_learning.json"), help="write every figure here"
    )
    parser.add_argument(
        "--no-dp", action="store_true", help="train the reward models without DP (a baseline)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to average over")
    parser.add_argument("--target", type=float, help="held-out concordance to reach")
    parser.add_argument("--rounds", type=int, help="rounds after the first (random) one")
    parser.add_argument("--cap", type=int, help="most cards per clinician per round (workload cap)")
    parser.add_argument("--reviews-per-card", type=int, help="distinct clinicians per card")
    parser.add_argument("--initial-cases", type=int, help="cards in the first, random round")
    parser.add_argument(
        "--uncertainty",
        choices=["mc-dropout", "ensemble", "design"],
        help="where the uncertainty comes from (design: one model's features, greedy D-optimal batches)",
    )
    parser.add_argument("--method", choices=list(METHODS), help="how samples become one score per pair")
    parser.add_argument("--members", type=int, help="ensemble members (with --uncertainty ensemble)")
    parser.add_argument("--passes", type=int, help="MC-dropout passes")
    parser.add_argument("--max-per-group", type=int, help="most cards of one target per round (diversity)")
    parser.add_argument("--history-patients", type=int, help="historical-practice patients for SFT")
    parser.add_argument("--sft-epochs", type=int, help="SFT epochs of the supervised policy")
    parser.add_argument("--pool-patients", type=int, help="synthetic feedback patients in the pool")
    parser.add_argument("--heldout-patients", type=int, help="held-out patients")
    parser.add_argument("--candidates", type=int, help="n of best-of-n")
    parser.add_argument("--reward-epochs", type=int, help="reward-model epochs")
    parser.add_argument("--explore", type=float, help="share of each active round chosen at random")
    parser.add_argument(
        "--stratify",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="active: the most uncertain cards within each target, in proportion to the pool",
    )
    parser.add_argument(
        "--strategies",
        nargs="+",
        choices=["random", "active", "random-valid", "thompson", "oracle"],
        help="run only these (default: random, active, random-valid)",
    )
    parser.add_argument(
        "--valid-first",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="active: cards with two valid prescriptions first (default on)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    settings = QUICK if args.quick else FULL
    overrides = {
        k: v
        for k, v in {
            "seeds": tuple(args.seeds) if args.seeds else None,
            "target": args.target,
            "rounds": args.rounds,
            "cap": args.cap,
            "reviews_per_card": args.reviews_per_card,
            "initial_cases": args.initial_cases,
            "uncertainty": args.uncertainty,
            "method": args.method,
            "members": args.members,
            "passes": args.passes,
            "max_per_group": args.max_per_group,
            "history_patients": args.history_patients,
            "sft_epochs": args.sft_epochs,
            "pool_patients": args.pool_patients,
            "heldout_patients": args.heldout_patients,
            "candidates": args.candidates,
            "reward_epochs": args.reward_epochs,
            "explore": args.explore,
            "stratify": args.stratify,
            "valid_first": args.valid_first,
            "strategies": tuple(args.strategies) if args.strategies else None,
        }.items()
        if v is not None
    }
    settings = replace(settings, **overrides, dp=not args.no_dp)
    started = time.monotonic()
    result = run(settings, args.policy, log=lambda line: print(line, flush=True))
    result["seconds"] = round(time.monotonic() - started, 1)
    args.out.write_text(json.dumps(result, indent=2))
    print(
        f"target concordance {settings.target}: judgments needed {result['judgments_to_target']}; "
        f"ratios {result['ratios']}; {result['seconds']:.0f} s -> {args.out}"
    )
    return result


if __name__ == "__main__":
    main()
