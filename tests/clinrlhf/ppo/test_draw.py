"""Token draws: the inverse-CDF path PPO takes when its CPU generator meets a GPU model.

No GPU runs here, so the GPU path is exercised through its pure function on the CPU: the same
arithmetic, only the device differs."""

from __future__ import annotations

import torch

from clinrlhf.policy.generate import draw, inverse_cdf


def test_inverse_cdf_matches_the_distribution():
    probs = torch.tensor([[0.1, 0.0, 0.6, 0.3]]).expand(40_000, 4)
    uniforms = torch.rand(40_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    tokens = inverse_cdf(probs, uniforms)
    freq = torch.bincount(tokens, minlength=4).double() / tokens.numel()
    assert freq[1] == 0  # a zero-probability token is never drawn
    assert torch.allclose(freq, probs[0].double(), atol=0.01)


def test_inverse_cdf_edges_land_on_real_tokens():
    probs = torch.tensor([[0.0, 0.5, 0.5, 0.0], [0.0, 0.5, 0.5, 0.0]])
    tokens = inverse_cdf(probs, torch.tensor([0.0, 1.0 - 1e-12], dtype=torch.float64))
    assert tokens.tolist() == [1, 2]


def test_inverse_cdf_ignores_unnormalised_mass():
    tokens = inverse_cdf(torch.tensor([[2.0, 6.0]]), torch.tensor([0.3], dtype=torch.float64))
    assert tokens.tolist() == [1]  # 0.3 of the total 8 is 2.4, past token 0's slice [0, 2)


def test_draw_on_the_generators_device_is_torch_multinomial():
    probs = torch.softmax(torch.randn(64, 10, generator=torch.Generator().manual_seed(1)), -1)
    mine = draw(probs, torch.Generator().manual_seed(7))
    theirs = torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(7)).squeeze(-1)
    assert torch.equal(mine, theirs)
