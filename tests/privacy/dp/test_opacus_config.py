"""One DPConfig for every Opacus-trained model: it refuses what cannot be a DP run, says where the
noise comes from, and moves the old flat settings under `dp`."""

from __future__ import annotations

import pytest

from privacy.dp.opacus_config import DPConfig, nest_legacy_dp


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"accountant": "gdp"}, "accountant"),
        ({"target_delta": 1.0}, "target_delta"),
        ({"target_epsilon": 0.0}, "target_epsilon"),
        ({"max_grad_norm": -1.0}, "max_grad_norm"),
        ({"reproducible_noise": True, "secure_mode": True}, "contradict"),
    ],
)
def test_settings_that_cannot_make_a_dp_run_are_refused_by_name(changes: dict, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        DPConfig(**changes)


def test_the_noise_is_secret_unless_the_debugging_mode_is_asked_for() -> None:
    assert DPConfig().noise == "secure"
    assert DPConfig(reproducible_noise=True).noise == "reproducible"
    assert DPConfig().delta_for(50) == 1 / 500 and DPConfig(target_delta=1e-6).delta_for(50) == 1e-6


def test_old_flat_settings_are_moved_under_dp() -> None:
    old = {"epochs": 3, "dp": False, "target_epsilon": 4.0, "delta": 1e-6, "secure_rng": False}
    assert nest_legacy_dp(old) == {
        "epochs": 3,
        "dp": {"enabled": False, "target_epsilon": 4.0, "target_delta": 1e-6, "secure_mode": False},
    }
    assert nest_legacy_dp({"dp": {"accountant": "rdp"}}) == {"dp": {"accountant": "rdp"}}
    with pytest.raises(ValueError, match="target_epsilon .*dp.target_epsilon"):
        nest_legacy_dp({"target_epsilon": 4.0, "dp": {"target_epsilon": 2.0}})
