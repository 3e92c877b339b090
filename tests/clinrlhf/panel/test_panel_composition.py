"""The simulated panel's composition: its size and how many adversaries it holds."""

from __future__ import annotations

import pytest

from clinrlhf.panel.clinicians import default_panel, panel_of


def test_the_default_panel_is_ten_with_one_adversary():
    panel = default_panel()
    assert len(panel) == 10 and sum(c.adversarial for c in panel) == 1
    assert panel == panel_of(10, 1)


@pytest.mark.parametrize(("size", "adversaries"), [(20, 0), (20, 1), (20, 2), (3, 3)])
def test_a_panel_has_the_size_and_adversaries_asked_for(size, adversaries):
    panel = panel_of(size, adversaries)
    assert len(panel) == size
    assert sum(c.adversarial for c in panel) == adversaries
    assert len({c.id for c in panel}) == size  # pseudonyms stay unique when raters repeat


def test_repeated_honest_raters_keep_their_noise_and_bias():
    panel = {c.id: c for c in panel_of(20, 0)}
    assert panel["dr-3-2"].noise == panel["dr-3"].noise
    assert panel["dr-loyal-to-habit-2"].bias == panel["dr-loyal-to-habit"].bias


@pytest.mark.parametrize(("size", "adversaries"), [(0, 0), (5, 6), (5, -1)])
def test_an_impossible_panel_is_refused(size, adversaries):
    with pytest.raises(ValueError, match="cannot have"):
        panel_of(size, adversaries)


def test_a_panel_of_contraindication_blind_adversaries():
    panel = panel_of(20, 2, kind="contraindication-blind")
    blind = [c for c in panel if c.blind_to_contraindications]
    assert len(panel) == 20 and len(blind) == 2 and not any(c.adversarial for c in panel)
    assert {c.id for c in blind} == {c.id for c in panel_of(20, 2) if c.adversarial}  # same seats
    with pytest.raises(ValueError, match="adversary kind"):
        panel_of(20, 2, kind="sloppy")
