"""The README is a door, not a notebook: short, with the two commands, each user's how-to on its
first screen, and links that lead somewhere. Figures live in docs/results.md by topic, settings in
docs/configuration.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clinrlhf.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "docs" / "results.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"
BENCHMARKS = ROOT / "benchmarks" / "README.md"
FIRST_SCREEN = 50  # lines


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # `# comments` in code are not headings
    return {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def test_readme_is_at_most_300_lines() -> None:
    assert len(README.read_text().splitlines()) <= 300


def test_readme_keeps_the_two_contract_commands() -> None:
    text = README.read_text()
    assert "make quickstart" in text and "make test" in text


@pytest.mark.parametrize("who", ["clinician", "ML team", "compliance officer", "operator"])
def test_each_user_finds_their_how_to_from_the_first_screen(who: str) -> None:
    first_screen = "\n".join(README.read_text().splitlines()[:FIRST_SCREEN])
    assert re.search(rf"\[[^\]]*{who}[^\]]*\]\(#", first_screen, flags=re.I), (
        f"no link to the {who}'s how-to in the README's first {FIRST_SCREEN} lines"
    )


def test_readme_holds_no_run_letters_or_commit_hashes() -> None:
    text = README.read_text()
    assert not re.search(r"\bruns? [A-H]\b", text)
    assert not re.search(r"`[0-9a-f]{7}`", text)


@pytest.mark.parametrize(
    "topic",
    ["alignment", "privacy", "de-identification", "service performance", "reliability", "feedback quality"],
)
def test_results_are_organised_by_topic(topic: str) -> None:
    assert _slug(topic) in _anchors(RESULTS)


def test_every_setting_is_documented_in_configuration_md() -> None:
    text = CONFIGURATION.read_text()
    prefix = Settings.model_config.get("env_prefix", "")
    missing = [
        f"{prefix}{name}".upper() for name in Settings.model_fields if f"{prefix}{name}".upper() not in text
    ]
    assert not missing, f"undocumented settings: {missing}"


@pytest.mark.parametrize(
    "page", [README, RESULTS, CONFIGURATION, BENCHMARKS], ids=lambda p: str(p.relative_to(ROOT))
)
def test_relative_links_lead_somewhere(page: Path) -> None:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # an absolute URL
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        missing_anchor = (
            bool(anchor) and dest.suffix == ".md" and dest.exists() and anchor not in _anchors(dest)
        )
        if not dest.exists() or missing_anchor:
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"
