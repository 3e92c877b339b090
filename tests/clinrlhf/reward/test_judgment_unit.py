"""The default privacy unit is one clinician's judgment of one card: every pair one review yields (a
pairwise, a rating and a correction over the same texts; k-1 pairs from a card of k suggestions) is
one DP sample, Poisson-sampled together and clipped together. Real Opacus on a tiny GPT-2."""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import GPT2Model, PreTrainedTokenizerFast

from clinrlhf.feedback.judgment import Judgment
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.pairs import PreferencePair, pairs_from_judgments
from clinrlhf.reward.trainer import prepare_training
from clinrlhf.reward.units import UnitRows, count_units
from privacy.dp import unit_sample_rate

torch.set_num_threads(1)


def _reviews(train_pairs: list[PreferencePair], cards: int) -> list[Judgment]:
    """Per card: one clinician's review as three judgments over the same two texts (pairwise,
    rating, correction), and a second clinician's acceptance of the third of four suggestions."""
    out = []
    for i, p in enumerate(train_pairs[:cards]):
        other = train_pairs[cards + i].chosen
        shared = {"card": f"card-{i}", "patient": p.patient, "prompt": p.prompt}
        two, four = (p.chosen, p.rejected), (p.rejected, p.chosen, other, train_pairs[2 * cards + i].rejected)
        out += [
            Judgment("pairwise", clinician="dr-a", responses=two, preferred=0, **shared),
            Judgment("rating", clinician="dr-a", responses=two, ratings=(5, 2), **shared),
            Judgment("correction", clinician="dr-a", responses=two, correction=other, **shared),
            Judgment("cds", clinician="dr-b", responses=four, accepted=2, **shared),
        ]
    return out


def test_one_review_of_one_card_is_one_unit_whatever_its_kinds(train_pairs: list[PreferencePair]) -> None:
    reviews = _reviews(train_pairs, cards=5)
    pairs = pairs_from_judgments(reviews)
    assert RewardConfig().privacy_unit == "judgment"
    units = UnitRows.of(pairs, "judgment")
    assert len(units) == count_units(pairs, "judgment") == 10  # 2 clinicians x 5 cards
    for rows in units.rows:
        (clinician, card), *others = {(pairs[int(r)].clinician, pairs[int(r)].card) for r in rows}
        assert not others
        # Every pair of that clinician's judgments of that card, whatever their kinds, and no other.
        own = [j for j in reviews if (j.clinician, j.card) == (clinician, card)]
        assert len(rows) == len(pairs_from_judgments(own))
    assert count_units(pairs, "clinician") == 2 and count_units(pairs, "pair") == len(pairs) > 10


def test_the_pairs_of_one_judgment_are_sampled_together_and_clipped_as_one(
    train_pairs: list[PreferencePair], tokenizer: PreTrainedTokenizerFast, backbone: Callable[..., GPT2Model]
) -> None:
    """One noiseless step on one review (a pairwise, a rating and a correction: 4 pairs), with C far
    below every pair's gradient norm. As one judgment, the sum of its pairs' gradients is clipped to
    C. Per pair, the pairwise and the rating (the same two texts, the same gradient) would each be
    clipped to C and count twice: 2C."""
    pairs = pairs_from_judgments(_reviews(train_pairs, cards=8))
    config = RewardConfig(epochs=1, units_per_batch=4, rater_buckets=None)
    torch.manual_seed(0)
    run = prepare_training(pairs, backbone(), tokenizer, config)
    assert run.units is not None and len(run.loader.dataset) == 16  # Poisson over judgments, not pairs
    assert run.sample_rate == unit_sample_rate(16, 4)
    review = next(i for i, rows in enumerate(run.units.rows) if len(rows) == 4)
    clip = 1e-4
    run.optimizer.max_grad_norm, run.optimizer.noise_multiplier = clip, 0.0
    record = run.step([torch.tensor([review])])
    assert record["batch_size"] == 4 and record["units"] == 1  # every pair of the judgment came along
    params = [p for p in run.module.parameters() if p.requires_grad]
    as_one = torch.sqrt(sum((p.summed_grad**2).sum() for p in params))  # type: ignore[attr-defined]
    assert as_one <= clip * (1 + 1e-4)

    pairwise, rating = (pairs[int(r)] for r in run.units.rows[review][:2])  # input order
    assert (pairwise.chosen, pairwise.rejected) == (rating.chosen, rating.rejected)
    per_pair = prepare_training(
        [pairwise, rating],
        backbone(),
        tokenizer,
        RewardConfig(epochs=1, batch_size=2, rater_buckets=None, privacy_unit="pair"),
    )
    per_pair.optimizer.max_grad_norm, per_pair.optimizer.noise_multiplier = clip, 0.0
    encoded = per_pair.encoded
    per_pair.step([encoded.input_ids, encoded.lengths, encoded.margins, encoded.raters, encoded.accuracy])
    summed = [p for p in per_pair.module.parameters() if p.requires_grad]
    per_pair_norm = torch.sqrt(sum((p.summed_grad**2).sum() for p in summed))  # type: ignore[attr-defined]
    torch.testing.assert_close(float(per_pair_norm), 2 * clip, rtol=1e-3, atol=0.0)
