"""The review page as a clinician meets it (issue 23): the guideline reads as a guideline, drugs and
labs read as a clinician writes them, the page says which model made the suggestions and whether it
is the production version, it fits a phone (360 and 390 px) and a desktop, focus is visible, Enter
asks before it submits, and the comment box says what a comment is for.

Browser tests drive Debian's Chromium through Playwright against a real uvicorn server (see
tests/services/test_review_page.py). Set CLINRLHF_WRITE_SCREENSHOTS=1 to write the screenshots the
layout tests check to docs/ (docs/review-page.md shows them).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from clinrlhf.identity import mint_token
from clinrlhf.policy.pointers import ProductionPolicy, set_production
from clinrlhf.policy.version import model_version
from clinrlhf.settings import Settings
from clinrlhf.store import add_card, add_case, deidentify_case, deployment_store, transaction
from clinrlhf.store.models import Review
from clinrlhf.text.prompt import render_response
from clinrlhf.world.facts import facts_from_bundle
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.scoring import contraindicated
from clinrlhf.world.world import World

TODAY = date(2026, 3, 1)
DOCS = Path(__file__).parents[2] / "docs"
PHONE, DESKTOP = {"width": 390, "height": 844}, {"width": 1280, "height": 900}


@pytest.fixture
def settings(tmp_path: Path, policy_dir: Path) -> Settings:
    return Settings(home=tmp_path / "home", review_overlap=2, policy=policy_dir)


@pytest.fixture
def served(policy_dir: Path) -> str:
    """The model version of the policy the test server serves, as its cards name it."""
    return model_version(policy_dir)


@pytest.fixture
def card(settings: Settings, world: World, served: str) -> str:
    """One diabetes card, for a patient with something to avoid, suggesting metformin and insulin
    glargine (a drug the model writes as the token `insulin_glargine`)."""
    patient = next(
        p
        for p in generate_patients(world, 60, seed=5, today=TODAY)
        if contraindicated(world, facts_from_bundle(p.bundle, on=TODAY))
    )
    with transaction(deployment_store(settings)) as session:
        case = deidentify_case(patient.bundle, key=settings.deid_secret, today=TODAY)
        row, _ = add_case(session, case, source="cds")
        stored = add_card(
            session,
            case_id=row.id,
            target="diabetes",
            prompt="treat diabetes ->",
            model_version=served,
            suggestions=[(d, render_response(world, d)) for d in ("metformin", "insulin_glargine")],
        )
        return stored.id


@pytest.fixture
def site(settings: Settings, card: str, live_server) -> Iterator[str]:
    with live_server(settings) as live:
        yield live.url


def page_html(site: str, settings: Settings) -> str:
    headers = {"Authorization": f"Bearer {mint_token(settings, role='clinician', sub='dr-read')}"}
    with httpx.Client(base_url=site, timeout=30) as client:
        response = client.get("/review", headers=headers)
    assert response.status_code == 200
    return re.sub(r"\s+", " ", response.text)


def stored_reviews(settings: Settings) -> list[Review]:
    with deployment_store(settings)() as session:
        return list(session.scalars(select(Review)))


# --- what the page says ---------------------------------------------------------------------------


def test_the_guideline_reads_first_line_then_its_fallback_and_says_why_to_avoid(
    site: str, settings: Settings
) -> None:
    html = page_html(site, settings)
    assert "Otherwise:" not in html
    assert '<span class="when">Otherwise, first line:</span> <span class="drugs">metformin</span>' in html
    assert (
        '<span class="when">If metformin is contraindicated:</span> <span class="drugs">insulin glargine</span>'
        in html
    )
    avoid = re.search(r'<ul class="avoid"[^>]*>(.*?)</ul>', html)
    assert avoid
    items = re.findall(r"<li><strong>([^<]+)</strong>: ([^<]+)</li>", avoid.group(1))
    assert items and all(reason.strip() for _, reason in items)  # every drug to avoid says why


def test_suggestions_and_labs_read_as_a_clinician_writes_them(site: str, settings: Settings) -> None:
    html = page_html(site, settings)
    assert "insulin_glargine" not in html
    assert "insulin glargine 10 units subcutaneously at bedtime" in html
    assert re.search(r"eGFR: [\d.]+ mL/min/1\.73 m²", html)
    assert re.search(r"potassium: [\d.]+ mmol/L", html)


def test_the_page_names_the_model_and_whether_it_is_approved(
    site: str, settings: Settings, served: str, policy_dir: Path
) -> None:
    html = page_html(site, settings)
    assert f"Suggestions by model <code>{served}</code>: not approved for production" in html
    set_production(
        settings.resolved_home,
        ProductionPolicy("clinrlhf-policy", "3", "models:/clinrlhf-policy/3", str(policy_dir)),
    )
    html = page_html(site, settings)
    assert (
        f"Suggestions by model <code>{served}</code>: approved: the production version (clinrlhf-policy v3)"
        in html
    )


# --- in the browser ------------------------------------------------------------------------------


def log_in(page, settings: Settings, sub: str) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    page.goto("/review/login")
    page.fill("#token", mint_token(settings, role="clinician", sub=sub))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/review$"))
    # the URL changes when the page commits; its deferred scripts bind the keys by DOMContentLoaded
    page.wait_for_load_state("domcontentloaded")


def screenshot(page, tmp_path: Path, name: str) -> Path:  # noqa: ANN001
    """A full-page screenshot; copied to docs/ when CLINRLHF_WRITE_SCREENSHOTS is set."""
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("CLINRLHF_WRITE_SCREENSHOTS"):
        shutil.copyfile(shot, DOCS / name)
    return shot


def png_width(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[16:20], "big")  # the IHDR chunk's width


@pytest.mark.browser
@pytest.mark.parametrize("width", [360, 390])
def test_on_a_phone_nothing_scrolls_sideways_and_the_guideline_and_both_suggestions_fit(
    page, settings: Settings, tmp_path: Path, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 844})
    sideways = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    page.goto("/review/login")
    assert page.evaluate(sideways) <= 0, f"the login page scrolls sideways at {width} px"
    log_in(page, settings, "dr-phone")
    overflow = page.evaluate(sideways)
    assert overflow <= 0, f"the page scrolls {overflow} px sideways at {width} px"
    for selector in (".guideline", "#suggestion-a", "#suggestion-b", "#review button[type=submit]"):
        box = page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, box)
    if width == PHONE["width"]:
        assert png_width(screenshot(page, tmp_path, "review-page-phone.png")) == width
    assert not page.errors, page.errors


@pytest.mark.browser
def test_on_a_desktop_the_context_and_the_suggestions_sit_side_by_side(
    page, settings: Settings, tmp_path: Path
) -> None:
    page.set_viewport_size(DESKTOP)
    log_in(page, settings, "dr-desk")
    case, guideline = page.locator(".case").bounding_box(), page.locator(".guideline").bounding_box()
    a, b = page.locator("#suggestion-a").bounding_box(), page.locator("#suggestion-b").bounding_box()
    assert case and guideline and a and b
    assert guideline["x"] > case["x"] + case["width"] - 1 and b["x"] > a["x"] + a["width"] - 1
    assert png_width(screenshot(page, tmp_path, "review-page-desktop.png")) == DESKTOP["width"]


@pytest.mark.browser
def test_keyboard_focus_is_clearly_visible(page, settings: Settings) -> None:
    log_in(page, settings, "dr-focus")
    page.keyboard.press("Tab")
    style = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, parseFloat(s.outlineWidth)]; })()"
    )
    assert page.evaluate("document.activeElement.matches(':focus-visible')")
    assert style[0] == "solid" and style[1] >= 2, style


@pytest.mark.browser
def test_enter_asks_before_it_submits_and_escape_takes_it_back(page, settings: Settings) -> None:
    from playwright.sync_api import expect

    log_in(page, settings, "dr-enter")
    for key in ("1", "a", "3"):  # A is better; A rated 3
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_contain_text("A is better; A rated 3")
    expect(page.locator("#status")).to_contain_text("Enter again")
    assert stored_reviews(settings) == []  # one Enter stores nothing
    page.keyboard.press("Escape")
    expect(page.locator("#status")).to_contain_text("Not submitted")
    page.keyboard.press("Enter")  # asks again: Escape took the first Enter back
    assert stored_reviews(settings) == []
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("reviewed")).to_have_text("1")
    (review,) = stored_reviews(settings)
    assert (review.choice, review.rating_a) == ("a", 3)
    assert not page.errors, page.errors


@pytest.mark.browser
def test_the_comment_box_says_what_a_comment_is_for_and_what_is_kept(page, settings: Settings) -> None:
    log_in(page, settings, "dr-comment")
    described = page.locator("#comment").get_attribute("aria-describedby")
    assert described
    help_text = page.locator(f"#{described}").inner_text()
    assert "flags this review" in help_text and "text is not kept" in help_text
