"""The adaptive KL controller follows Ziegler et al. (2019): a clipped proportional update of beta."""

import pytest

from clinrlhf.ppo.kl_controller import AdaptiveKLController, FixedKLController, adaptive_kl_coef


def test_update_rule_numbers() -> None:
    # error = clip(3 / 2 - 1, -0.2, 0.2) = 0.2, so beta *= 1 + 0.2 * 64 / 640 = 1.02
    assert adaptive_kl_coef(0.1, kl=3.0, target=2.0, n_steps=64, horizon=640) == pytest.approx(0.102)
    # error = 2.2 / 2 - 1 = 0.1 (inside the clip), so beta *= 1 + 0.1 * 0.5
    assert adaptive_kl_coef(0.2, kl=2.2, target=2.0, n_steps=50, horizon=100) == pytest.approx(0.21)
    # error clipped to -0.2 however small the KL
    assert adaptive_kl_coef(0.1, kl=0.0, target=2.0, n_steps=100, horizon=100) == pytest.approx(0.08)


def test_on_target_kl_leaves_beta_unchanged() -> None:
    controller = AdaptiveKLController(0.05, target=2.0, horizon=1000)
    assert controller.update(2.0, n_steps=64) == pytest.approx(0.05)


def test_beta_grows_while_kl_is_high_and_shrinks_while_low() -> None:
    controller = AdaptiveKLController(0.1, target=1.0, horizon=100)
    for _ in range(5):
        controller.update(5.0, n_steps=10)
    assert controller.value == pytest.approx(0.1 * 1.02**5)
    high = controller.value
    controller.update(0.5, n_steps=10)
    assert controller.value == pytest.approx(high * 0.98)


def test_state_round_trips() -> None:
    controller = AdaptiveKLController(0.1, target=1.0, horizon=100)
    controller.update(3.0, n_steps=10)
    restored = AdaptiveKLController(9.9, target=9.9, horizon=9.9)
    restored.load_state_dict(controller.state_dict())
    assert restored.update(3.0, 10) == controller.update(3.0, 10)


def test_fixed_controller_never_moves() -> None:
    controller = FixedKLController(0.3)
    assert controller.update(100.0, n_steps=1000) == 0.3
    other = FixedKLController(0.0)
    other.load_state_dict(controller.state_dict())
    assert other.value == 0.3


def test_nonpositive_target_is_rejected() -> None:
    with pytest.raises(ValueError):
        AdaptiveKLController(0.1, target=0.0, horizon=100)
