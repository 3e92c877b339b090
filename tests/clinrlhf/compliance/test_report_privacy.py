"""The compliance report's privacy statement tells the whole truth: the unit, ε and δ, what the
guarantee is conditional on, everything it does not cover, and "not a DP release" when the noise was
reproducible. Rendered from a real SQLite MLflow store holding a miniature pipeline run."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from clinrlhf.compliance.evidence import gather
from clinrlhf.compliance.modelcard import model_card
from clinrlhf.compliance.report import build_report
from clinrlhf.lineage.chain import load_chain

NOISE_TAG = "clinrlhf.dp_noise"  # what the reward trainer tags a DP run with


class Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _privacy_section(sample, noise: str | None) -> str:
    if noise is not None:
        sample.client.set_tag(sample.good.stages["reward"], NOISE_TAG, noise)
    chain = load_chain(sample.client, sample.good.pipeline_run_id)
    html = build_report(sample.client, chain, sample.settings.mlflow_tracking_uri)
    section = html[html.index('id="privacy"') : html.index('id="deid"')]
    parser = Text()
    parser.feed(section)
    return " ".join(" ".join(parser.parts).split())


def test_the_statement_names_unit_epsilon_delta_conditions_and_what_is_not_covered(sample) -> None:
    text = _privacy_section(sample, "secure")
    # The sample reward run: pair unit, ε = 3, δ = 1e-5.
    for stated in ("privacy unit pair", "ε 3.000", "δ 1e-05", "a DP release yes"):
        assert stated in text
    assert "(3.00, 1e-05)-differentially private" in text
    # Conditional on: each step that read the raw judgments before the mechanism.
    assert "Conditional on" in text
    for condition in ("Rater screening", "quarantine list held fixed", "k-anonymity suppression"):
        assert condition in text
    # Not covered: one item each.
    assert "What is not covered" in text
    for item in (
        "Screening in the clear",
        "Per-step metrics logged outside DP",
        "The feedback snapshot: MLflow holds only its SHA-256",
        "CLINRLHF_HOME/snapshots",
        "PPO prompts: PPO read the snapshot's prompts",
        "Counts:",
    ):
        assert item in text
    assert "not a DP release" not in text


def test_a_run_with_reproducible_noise_is_not_a_dp_release(sample) -> None:
    text = _privacy_section(sample, "reproducible")
    assert "not a DP release" in text and "a DP release no" in text
    assert text.index("not a DP release") < text.index("differentially private")  # said first
    card = model_card(gather(sample.client, load_chain(sample.client, sample.good.pipeline_run_id), ""))
    (privacy,) = [value for section in card for label, value in section.items if label == "Privacy"]
    assert "not a DP release" in privacy and "differentially private" not in privacy


@pytest.mark.parametrize("noise", [None, "secure"])
def test_only_the_reproducible_mode_is_called_not_a_dp_release(sample, noise: str | None) -> None:
    assert "not a DP release" not in _privacy_section(sample, noise)
