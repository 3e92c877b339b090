"""The one-run canary game played against the project's Opacus mechanism (privacy.dp.opacus_engine.make_private,
what the reward model trains through) with gradient-space Dirac canaries: calibrated to ε = 1 at
δ = 1e-5, a correct run's lower bound stays at or below the ε it reports, and each broken control
that still reports ε = 1 — noise divided by 4, clipping disabled, a clinician unit's pairs clipped
one by one instead of as one unit — is caught with a lower bound above it. If the game lost its
power, the detection tests would fail."""

from __future__ import annotations

import pytest
import torch

from privacy.dp import unit_step
from privacy.dp.canary_game import epsilon_lower_bound
from privacy.dp.dirac_canaries import DiracGame, DiracGameResult, no_clipping, play_dirac_game, quarter_noise
from privacy.dp.opacus_config import DPConfig

torch.set_num_threads(1)
# Opacus warns whenever secure_mode is off; the reproducible mode below is chosen on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Secure RNG turned off")

# Reproducible noise so that each test is one fixed draw; the benchmark (benchmarks/dp_canary_game.py) plays
# the same game with the default secret noise.
DP = DPConfig(target_epsilon=1.0, target_delta=1e-5, reproducible_noise=True)
PAIRS = DiracGame(canaries=5000, k_plus=100)  # q = 1/2, 20 steps
CLINICIANS = DiracGame(canaries=5000, k_plus=100, rows_per_unit=4)


def _assert_reports_the_calibrated_epsilon(result: DiracGameResult) -> None:
    assert 0.9 <= result.reported_epsilon <= DP.target_epsilon
    assert result.delta == DP.target_delta and result.sample_rate == 0.5 and result.steps == 20


def test_the_game_could_prove_far_more_than_the_epsilon_it_checks() -> None:
    # All k₊ guesses right, δ term included: the most this game can prove is well above ε = 1.
    assert epsilon_lower_bound(PAIRS.canaries, PAIRS.k_plus, PAIRS.k_plus, 1e-5) > 3.0


def test_a_correct_run_is_not_caught_spending_more_than_it_reports() -> None:
    result = play_dirac_game(DP, PAIRS)
    _assert_reports_the_calibrated_epsilon(result)
    assert result.outcome.correct > result.outcome.guesses / 2  # the canaries do leak, within ε
    assert result.epsilon_lower_bound <= result.reported_epsilon
    assert not result.caught


def test_noise_divided_by_four_is_caught() -> None:
    result = play_dirac_game(DP, PAIRS, tamper=quarter_noise)
    _assert_reports_the_calibrated_epsilon(result)
    assert result.caught, f"bound {result.epsilon_lower_bound:.2f} <= reported {result.reported_epsilon:.2f}"


def test_disabled_clipping_is_caught() -> None:
    result = play_dirac_game(DP, PAIRS, tamper=no_clipping)
    _assert_reports_the_calibrated_epsilon(result)
    assert result.caught, f"bound {result.epsilon_lower_bound:.2f} <= reported {result.reported_epsilon:.2f}"


def test_a_correct_clinician_unit_run_is_not_caught() -> None:
    # Each canary is a unit of 4 pairs, sampled together, its summed gradient clipped as one sample.
    result = play_dirac_game(DP, CLINICIANS)
    _assert_reports_the_calibrated_epsilon(result)
    assert result.epsilon_lower_bound <= result.reported_epsilon


def test_a_clinician_unit_whose_pairs_are_clipped_one_by_one_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The bug: the per-pair gradients reach the DPOptimizer unsummed, so each pair is clipped to C
    # and one clinician moves the sum by 4·C while the accounting assumes C. It is planted in the
    # step the reward trainer itself uses (privacy.dp.unit_step), which the game plays through.
    monkeypatch.setattr(unit_step, "sum_by_unit", lambda per_row, owner, n_units, out=None: per_row)
    result = play_dirac_game(DP, CLINICIANS)
    _assert_reports_the_calibrated_epsilon(result)
    assert result.caught, f"bound {result.epsilon_lower_bound:.2f} <= reported {result.reported_epsilon:.2f}"


@pytest.mark.parametrize(
    "dp",
    [DPConfig(enabled=False, target_delta=1e-5), DPConfig(target_epsilon=1.0)],
    ids=["no-dp", "no-delta"],
)
def test_the_game_needs_a_dp_run_with_a_fixed_delta(dp: DPConfig) -> None:
    with pytest.raises(ValueError, match="fixed target_delta"):
        play_dirac_game(dp, PAIRS)
