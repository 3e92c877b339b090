"""The clinicians' review page: a queue of de-identified cases, two suggestions side by side, keyboard
shortcuts, k reviewers per case, CSRF and security headers.

The browser tests drive Debian's Chromium (`/usr/bin/chromium`, never a downloaded browser) through
Playwright against a real uvicorn server on 127.0.0.1, then read what the store kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from clinrlhf.identity import clinician_pseudonym, mint_token
from clinrlhf.settings import Settings
from clinrlhf.store import (
    add_card,
    add_case,
    deidentify_case,
    deployment_store,
    record_audit,
    transaction,
    verify_audit,
)
from clinrlhf.store.models import AuditEvent, Review
from clinrlhf.text.prompt import render_response
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World
from services.web.headers import SECURITY_HEADERS

CHROMIUM = Path("/usr/bin/chromium")


def browser_test(test):  # noqa: ANN001, ANN201 -- marks a test as needing Debian's Chromium
    needs = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
    return pytest.mark.browser(needs(test))


TODAY = date(2026, 3, 1)
CASES = 3
COMMENT = "Discussed with Maria Okafor, MRN 12345678, call 555-123-4567"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", review_overlap=2)


@pytest.fixture
def cards(settings: Settings, world: World) -> list[str]:
    """Cards as the CDS service stores them: a de-identified case, two ranked suggestions, audited."""
    ids = []
    with transaction(deployment_store(settings)) as session:
        for patient in generate_patients(world, CASES, seed=21, today=TODAY):
            case = deidentify_case(patient.bundle, key=settings.deid_secret, today=TODAY)
            row, _ = add_case(session, case, source="cds")
            card = add_card(
                session,
                case_id=row.id,
                target="hypertension",
                prompt="treat hypertension ->",
                model_version="test@1",
                suggestions=[(d, render_response(world, d)) for d in ("lisinopril", "amlodipine")],
            )
            record_audit(session, actor="cds-client:ehr", action="C", entity_type="Case", entity_id=row.id)
            record_audit(session, actor="cds-client:ehr", action="C", entity_type="Card", entity_id=card.id)
            ids.append(card.id)
    return ids


@pytest.fixture
def site(settings: Settings, cards: list[str], live_server) -> Iterator[str]:
    with live_server(settings) as live:
        yield live.url


def token(settings: Settings, sub: str, role: str = "clinician") -> str:
    return mint_token(settings, role=role, sub=sub)


def stored_reviews(settings: Settings) -> list[Review]:
    with deployment_store(settings)() as session:
        query = select(Review).order_by(Review.created_at).options(selectinload(Review.suggestion_a))
        return list(session.scalars(query))


def logged_in(base: str, bearer: str) -> tuple[httpx.Client, str]:
    """An httpx client holding a session cookie, as the login form leaves a browser; and its CSRF token."""
    client = httpx.Client(base_url=base, timeout=30)
    nonce = meta_csrf(client.get("/review/login").text)
    response = client.post("/review/session", json={"token": bearer}, headers={"X-CSRF-Token": nonce})
    assert response.status_code == 200, response.text
    return client, meta_csrf(client.get("/review").text)


def meta_csrf(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]*)"', html)
    assert match
    return match.group(1)


def form_of(html: str) -> dict[str, str]:
    """The card and the suggestions shown left (A) and right (B)."""
    found = dict(re.findall(r'data-(card|a|b)="([^"]+)"', html))
    return {"card": found["card"], "suggestion_a": found["a"], "suggestion_b": found["b"]}


# --- in the browser ------------------------------------------------------------------------------


# `page` (tests/services/conftest.py): headless Chromium on this module's `site`.


def log_in(page, settings: Settings, sub: str) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    page.goto("/review")  # not logged in: sent to the login form
    expect(page).to_have_url(re.compile(r"/review/login$"))
    page.fill("#token", token(settings, sub))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/review$"))
    # the URL changes when the page commits; its deferred scripts bind the keys by DOMContentLoaded
    page.wait_for_load_state("domcontentloaded")


@browser_test
def test_a_clinician_chooses_and_rates_with_the_keyboard_and_the_review_is_stored(
    page, settings: Settings, cards: list[str]
) -> None:
    from playwright.sync_api import expect

    log_in(page, settings, "dr-house")
    expect(page.get_by_test_id("reviewed")).to_have_text("0")
    expect(page.get_by_test_id("waiting")).to_have_text(str(CASES))
    expect(page.locator("#case-title")).to_contain_text("Hypertension")
    expect(page.locator(".tiers li.applies")).to_have_count(1)  # the guideline tier that applies
    shown = {k: page.locator("#review").get_attribute(f"data-{k}") for k in ("card", "a", "b")}
    left_text = page.locator("#suggestion-a .text").inner_text()

    for key in ("2", "a", "4", "b", "5"):  # B is better; A rated 4, B rated 5
        page.keyboard.press(key)
    expect(page.locator('input[name="choice"][value="b"]')).to_be_checked()
    expect(page.locator('input[name="rating_a"][value="4"]')).to_be_checked()
    page.keyboard.press("Enter")  # says what will be submitted
    expect(page.locator("#status")).to_contain_text("B is better; A rated 4; B rated 5")
    page.keyboard.press("Enter")  # submits

    expect(page.get_by_test_id("reviewed")).to_have_text("1")  # the next case has loaded
    expect(page.get_by_test_id("waiting")).to_have_text(str(CASES - 1))
    assert page.locator("#review").get_attribute("data-card") != shown["card"]
    (review,) = stored_reviews(settings)
    assert (review.card_id, review.suggestion_a_id, review.suggestion_b_id) == (
        shown["card"],
        shown["a"],
        shown["b"],
    )
    assert (review.choice, review.rating_a, review.rating_b, review.has_comment) == ("b", 4, 5, False)
    assert review.suggestion_a.text == left_text
    assert review.clinician == clinician_pseudonym(settings.deid_secret, "dr-house")
    with deployment_store(settings)() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.entity_id == review.id)).one()
        assert (event.action, event.entity_type) == ("C", "QuestionnaireResponse")
        assert verify_audit(session).ok
    assert not page.errors, page.errors  # no script error, no CSP violation


@browser_test
def test_a_comment_typed_on_the_page_is_scrubbed_and_only_flagged(page, settings: Settings) -> None:
    from playwright.sync_api import expect

    log_in(page, settings, "dr-grey")
    page.keyboard.press("c")  # into the comment box
    page.keyboard.type(COMMENT)
    page.keyboard.press("Escape")
    page.keyboard.press("t")  # equally good
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_contain_text("equally good; with a comment")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("reviewed")).to_have_text("1")
    (review,) = stored_reviews(settings)
    assert (review.choice, review.has_comment) == ("tie", True)
    on_disk = b"".join(p.read_bytes() for p in settings.resolved_home.rglob("*") if p.is_file())
    for fragment in ("Okafor", "12345678", "555-123-4567"):
        assert fragment.encode() not in on_disk


@browser_test
def test_submitting_nothing_says_what_to_do_and_stores_nothing(page, settings: Settings) -> None:
    from playwright.sync_api import expect

    log_in(page, settings, "dr-quinn")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_contain_text("Choose")
    assert stored_reviews(settings) == []


# --- over HTTP -----------------------------------------------------------------------------------


def test_every_response_carries_the_security_headers(site: str, settings: Settings) -> None:
    with httpx.Client(base_url=site) as client:
        for response in (client.get("/review/login"), client.get("/healthz"), client.get("/review")):
            for name, value in SECURITY_HEADERS.items():
                assert response.headers[name] == value
        assert "frame-ancestors 'none'" in SECURITY_HEADERS["Content-Security-Policy"]
        assert client.get("/review/login").headers["cache-control"] == "no-store"


def test_a_browser_without_a_session_is_sent_to_log_in_and_an_api_client_gets_401(site: str) -> None:
    with httpx.Client(base_url=site) as client:
        redirect = client.get("/review", headers={"Accept": "text/html"})
        assert redirect.status_code == 303 and redirect.headers["location"].endswith("/review/login")
        outcome = client.get("/review")
        assert outcome.status_code == 401 and outcome.json()["resourceType"] == "OperationOutcome"


def test_login_needs_the_forms_csrf_nonce_and_a_clinician_token(site: str, settings: Settings) -> None:
    with httpx.Client(base_url=site) as client:
        nonce = meta_csrf(client.get("/review/login").text)
        good = {"token": token(settings, "dr-a")}
        assert client.post("/review/session", json=good).status_code == 403  # no echoed nonce
        assert (
            client.post("/review/session", json=good, headers={"X-CSRF-Token": "x" + nonce}).status_code
            == 403
        )
        csrf = {"X-CSRF-Token": nonce}
        assert client.post("/review/session", json={}, headers=csrf).status_code == 401
        assert client.post("/review/session", json={"token": "not.a.jwt"}, headers=csrf).status_code == 401
        wrong = {"token": token(settings, "eng", role="ml-engineer")}
        assert client.post("/review/session", json=wrong, headers=csrf).status_code == 403
        assert client.post("/review/session", json=good, headers=csrf).status_code == 200
        cookie = client.cookies.jar
        assert any(c.name == "clinrlhf_review" and c.has_nonstandard_attr("HttpOnly") for c in cookie)


def test_a_session_write_needs_its_csrf_token(site: str, settings: Settings) -> None:
    client, csrf = logged_in(site, token(settings, "dr-b"))
    try:
        form = form_of(client.get("/review").text) | {"choice": "a"}
        assert client.post("/review/submit", json=form).status_code == 403
        other, other_csrf = logged_in(site, token(settings, "dr-c"))  # another session's token
        other.close()
        assert (
            client.post("/review/submit", json=form, headers={"X-CSRF-Token": other_csrf}).status_code == 403
        )
        assert stored_reviews(settings) == []
        assert client.post("/review/submit", json=form, headers={"X-CSRF-Token": csrf}).status_code == 201
        assert client.post("/review/logout", json={}, headers={"X-CSRF-Token": csrf}).status_code == 204
        assert client.get("/review").status_code == 401
    finally:
        client.close()


def test_each_case_goes_to_k_clinicians_then_leaves_the_pool(site: str, settings: Settings) -> None:
    assert settings.review_overlap == 2
    bearer = {sub: {"Authorization": f"Bearer {token(settings, sub)}"} for sub in ("dr-1", "dr-2", "dr-3")}
    with httpx.Client(base_url=site, timeout=30) as client:
        first = form_of(client.get("/review", headers=bearer["dr-1"]).text)
        assert (
            client.post("/review/submit", json=first | {"choice": "a"}, headers=bearer["dr-1"]).status_code
            == 201
        )
        # Reviewed: gone from dr-1's queue, still in dr-2's. Sending the same review again stores it once;
        # a different one is a conflict.
        assert form_of(client.get("/review", headers=bearer["dr-1"]).text)["card"] != first["card"]
        assert (
            client.post("/review/submit", json=first | {"choice": "a"}, headers=bearer["dr-1"]).status_code
            == 200
        )
        assert (
            client.post("/review/submit", json=first | {"choice": "b"}, headers=bearer["dr-1"]).status_code
            == 409
        )
        assert form_of(client.get("/review", headers=bearer["dr-2"]).text)["card"] == first["card"]
        assert (
            client.post("/review/submit", json=first | {"rating_a": 3}, headers=bearer["dr-2"]).status_code
            == 201
        )
        # Two of k=2: the case has left the pool, and a late submission is refused.
        page = client.get("/review", headers=bearer["dr-3"]).text
        assert form_of(page)["card"] != first["card"]
        assert re.search(r'data-testid="waiting">(\d+)<', page).group(1) == str(CASES - 1)  # type: ignore[union-attr]
        late = client.post("/review/submit", json=first | {"choice": "b"}, headers=bearer["dr-3"])
        assert late.status_code == 409 and late.json()["resourceType"] == "OperationOutcome"
    assert len(stored_reviews(settings)) == 2


def test_a_reviewer_who_has_seen_everything_sees_an_empty_queue(site: str, settings: Settings) -> None:
    headers = {"Authorization": f"Bearer {token(settings, 'dr-all')}"}
    with httpx.Client(base_url=site, timeout=30) as client:
        for reviewed in range(CASES):
            page = client.get("/review", headers=headers).text
            assert f'data-testid="reviewed">{reviewed}<' in page
            assert (
                client.post(
                    "/review/submit", json=form_of(page) | {"choice": "tie"}, headers=headers
                ).status_code
                == 201
            )
        page = client.get("/review", headers=headers).text
    assert "Queue empty" in page and f'data-testid="reviewed">{CASES}<' in page


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[1, 2]", 422),
        (b'{"card": "x", "suggestion_a": "y", "suggestion_b": "z", "choice": "a"}', 404),
        (b'{"card": "x", "suggestion_a": "y", "suggestion_b": "z", "choice": "c"}', 422),
        (b'{"card": "x", "suggestion_a": "y", "suggestion_b": "z", "rating_a": 6}', 422),
        (b'{"card": "x", "suggestion_a": "y", "suggestion_b": "z", "name": "Okafor"}', 422),
    ],
)
def test_malformed_submissions_are_4xx_outcomes(
    site: str, settings: Settings, body: bytes, status: int
) -> None:
    headers = {"Authorization": f"Bearer {token(settings, 'dr-x')}", "Content-Type": "application/json"}
    with httpx.Client(base_url=site) as client:
        response = client.post("/review/submit", content=body, headers=headers)
    assert response.status_code == status and response.json()["resourceType"] == "OperationOutcome"
    assert "Okafor" not in response.text


def test_a_page_review_reads_back_as_a_fhir_questionnaire_response(site: str, settings: Settings) -> None:
    doctor = {"Authorization": f"Bearer {token(settings, 'dr-y')}"}
    engineer = {"Authorization": f"Bearer {token(settings, 'eng', role='ml-engineer')}"}
    with httpx.Client(base_url=site) as client:
        form = form_of(client.get("/review", headers=doctor).text)
        created = client.post(
            "/review/submit", json=form | {"choice": "b", "correction": "6185"}, headers=doctor
        )
        assert created.status_code == 201
        again = client.get(created.headers["location"], headers=engineer)
    assert again.status_code == 200 and again.json() == created.json()
    answers = {i["linkId"]: i["answer"][0] for i in again.json()["item"]}
    assert answers["choice"]["valueCoding"]["code"] == "b"
    assert answers["correction"]["valueCoding"]["code"] == "6185"
