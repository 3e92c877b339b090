"""The review page's agreement admin view, /review/admin/agreement: live agreement by case type and by
clinician, for compliance officers only.

Reviews are seeded in the store so that three clinicians overlap on the same cases (each shown the
pair in an order of their own), and the page's numbers are checked against clinrlhf.feedback's
functions called directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import httpx
import numpy as np
import pytest

from clinrlhf.feedback.agreement import Interval, krippendorff_alpha_ci
from clinrlhf.feedback.clinician_agreement import CHOICES, pairwise_choices, per_case_type, per_clinician
from clinrlhf.identity import ROLE_SCOPES, clinician_pseudonym, mint_token
from clinrlhf.settings import Settings
from clinrlhf.store import (
    ReviewEntry,
    add_card,
    add_case,
    deidentify_case,
    deployment_store,
    export_judgments,
    record_review,
    transaction,
)
from clinrlhf.text.prompt import render_response
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World
from services.web.agreement_view import ALPHA, COHEN, FLEISS, N_BOOT
from services.web.headers import SECURITY_HEADERS

TODAY = date(2026, 3, 1)
DOCTORS = ("dr-1", "dr-2", "dr-3")
DRUGS = {"hypertension": ("lisinopril", "amlodipine"), "diabetes": ("metformin", "insulin_glargine")}
# Each case's choices by dr-1, dr-2, dr-3: "first" and "second" name the suggestions in sorted-text
# order; None: that clinician did not review the case.
VOTES: dict[str, list[tuple[str | None, ...]]] = {
    "hypertension": [
        ("first", "first", "first"),
        ("second", "second", "first"),
        ("first", "second", "second"),
        ("tie", "tie", "first"),
        ("first", None, None),  # judged once: no agreement to measure
    ],
    "diabetes": [
        ("first", "first", "second"),
        ("second", "second", "second"),
        ("first", "first", "first"),
        ("second", "first", "second"),
    ],
}
# (rating of the first, of the second suggestion) by dr-1, dr-2, dr-3, for the first three cases of a type.
RATINGS = [((4, 2), (5, 2), (3, 3)), ((2, 5), (1, 4), (2, 4)), ((3, 3), (4, 2), (1, 5))]


def token(settings: Settings, sub: str, role: str = "clinician", scopes: str | None = None) -> str:
    return mint_token(settings, role=role, sub=sub, scopes=scopes)


def bearer(
    settings: Settings, sub: str, role: str = "clinician", scopes: str | None = None
) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(settings, sub, role, scopes)}"}


HTML = {"Accept": "text/html"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", review_overlap=3)


@dataclass
class Seeded:
    """Per case type, what the clinicians judged, as (clinicians, items) matrices with NaN where a
    clinician did not judge an item, built here from VOTES and RATINGS (not from the store). Items
    are in the order the view keeps them (by card id, then suggestion text), which the bootstrap's
    resamples follow."""

    choices: dict[str, np.ndarray]  # CHOICES codes; items: cards
    ratings: dict[str, np.ndarray]  # 1-5; items: (card, suggestion text)


def matrix(cells: dict[tuple[int, tuple[str, ...]], float]) -> np.ndarray:
    items = sorted({item for _, item in cells})
    out = np.full((len(DOCTORS), len(items)), np.nan)
    for (doctor, item), value in cells.items():
        out[doctor, items.index(item)] = value
    return out


def seed(settings: Settings, world: World) -> Seeded:
    """Store the cases and the reviews of VOTES and RATINGS, as the review page would."""
    seeded = Seeded({}, {})
    patients = iter(generate_patients(world, sum(map(len, VOTES.values())), seed=5, today=TODAY))
    with transaction(deployment_store(settings)) as session:
        for target, cases in VOTES.items():
            choices: dict[tuple[int, tuple[str, ...]], float] = {}
            ratings: dict[tuple[int, tuple[str, ...]], float] = {}
            for n, votes in enumerate(cases):
                case = deidentify_case(next(patients).bundle, key=settings.deid_secret, today=TODAY)
                row, _ = add_case(session, case, source="cds")
                card = add_card(
                    session,
                    case_id=row.id,
                    target=target,
                    prompt=f"treat {target} ->",
                    model_version="test@1",
                    suggestions=[(d, render_response(world, d)) for d in DRUGS[target]],
                )
                first, second = sorted(card.suggestions, key=lambda s: s.text)
                for d, (doctor, vote) in enumerate(zip(DOCTORS, votes, strict=True)):
                    if vote is None:
                        continue
                    choices[(d, (card.id,))] = CHOICES.index(vote)
                    shown = (first, second) if d % 2 == 0 else (second, first)  # left and right differ
                    side = {first.id: "ab"[shown.index(first)], second.id: "ab"[shown.index(second)]}
                    choice = {"tie": "tie", "first": side[first.id], "second": side[second.id]}[vote]
                    rated: dict[str, int] = {}
                    if n < len(RATINGS):
                        for s, rating in zip((first, second), RATINGS[n][d], strict=True):
                            ratings[(d, (card.id, s.text))] = rating
                            rated[f"rating_{side[s.id]}"] = rating
                    entry = ReviewEntry(card.id, shown[0].id, shown[1].id, choice=choice, **rated)  # type: ignore[arg-type]
                    record_review(session, entry, clinician=clinician_pseudonym(settings.deid_secret, doctor))
            seeded.choices[target], seeded.ratings[target] = matrix(choices), matrix(ratings)
    return seeded


@pytest.fixture
def seeded(settings: Settings, world: World) -> Seeded:
    return seed(settings, world)


@pytest.fixture
def site(settings: Settings, seeded: Seeded, live_server) -> Iterator[str]:
    with live_server(settings) as live:
        yield live.url


class Tables(HTMLParser):
    """Rows of the page's stat tables: table id -> [{group, statistic, estimate, low, high, items}]."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[dict[str, str]]] = {}
        self._table: str | None = None
        self._cell: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append({})
        elif a.get("class") in ("group", "statistic", "estimate", "low", "high", "items"):
            self._cell = a["class"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        self._cell = None if tag in ("th", "td", "span") else self._cell

    def handle_data(self, data: str) -> None:
        if self._table is not None and self._cell is not None:
            row = self.tables[self._table][-1]
            row[self._cell] = row.get(self._cell, "") + data.strip()


def rows_of(html: str, table: str) -> dict[tuple[str, str], dict[str, str]]:
    rows = [r for r in Tables(html).tables[table] if r]  # the header row has no classed cells
    return {(r["group"], r["statistic"]): r for r in rows}


def assert_shows(row: dict[str, str], expected: Interval) -> None:
    """The row shows the interval: 3 decimals, "–" where undefined, and the same item count."""
    for cell, value in (("estimate", expected.estimate), ("low", expected.low), ("high", expected.high)):
        if np.isfinite(value):
            assert float(row[cell]) == pytest.approx(value, abs=5e-4), (cell, row)
        else:
            assert row[cell] == "–", (cell, row)
    assert int(row["items"]) == expected.items


# --- over HTTP -----------------------------------------------------------------------------------


def test_the_page_shows_what_the_agreement_functions_compute(
    site: str, settings: Settings, seeded: Seeded
) -> None:
    with httpx.Client(base_url=site, timeout=60) as client:
        response = client.get("/review/admin/agreement", headers=bearer(settings, "officer", "compliance"))
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    assert all(response.headers[name] == value for name, value in SECURITY_HEADERS.items())
    assert "<script>" not in response.text  # scripts come from /review/static only (CSP: script-src 'self')
    assert 'data-testid="empty"' not in response.text

    with deployment_store(settings)() as session:
        judgments = export_judgments(session)
    choices, types = pairwise_choices(judgments)
    by_case = rows_of(response.text, "by-case-type")
    fleiss = per_case_type(choices, types, n_boot=N_BOOT)
    assert set(fleiss) == {"hypertension", "diabetes"}
    assert fleiss["hypertension"].items == 4  # the case judged once is left out
    for case, expected in fleiss.items():
        assert_shows(by_case[(case, FLEISS)], expected)
        alpha = krippendorff_alpha_ci(seeded.choices[case], "nominal", n_boot=N_BOOT, seed=0)
        assert np.isfinite(alpha.estimate) and alpha.items == expected.items
        assert_shows(by_case[(case, ALPHA["nominal"])], alpha)
        for level in ("ordinal", "interval"):  # over the ratings: 3 cases x 2 suggestions
            alpha = krippendorff_alpha_ci(seeded.ratings[case], level, n_boot=N_BOOT, seed=0)
            assert np.isfinite(alpha.estimate) and alpha.items == 2 * len(RATINGS)
            assert_shows(by_case[(case, ALPHA[level])], alpha)
    assert len(by_case) == 8  # two case types, four statistics each

    by_clinician = rows_of(response.text, "by-clinician")
    expected_rows = per_clinician(choices, n_boot=N_BOOT)
    assert len(by_clinician) == len(DOCTORS) == len(expected_rows)
    for row in expected_rows:
        assert_shows(by_clinician[(row.clinician, COHEN)], row.kappa)
    shown_order = [r["group"] for r in Tables(response.text).tables["by-clinician"] if r]
    assert shown_order == [r.clinician for r in expected_rows]  # lowest κ first
    # Pseudonyms only: no login subject appears on the page.
    assert {g for g, _ in by_clinician} == {clinician_pseudonym(settings.deid_secret, d) for d in DOCTORS}
    assert not any(doctor in response.text for doctor in DOCTORS)


def log_in(site: str, bearer_token: str) -> tuple[httpx.Client, str]:
    """An httpx client holding the session cookie the login form leaves a browser, and the page
    the form goes to next."""
    client = httpx.Client(base_url=site, timeout=30)
    nonce = re.search(r'<meta name="csrf-token" content="([^"]*)"', client.get("/review/login").text)
    assert nonce
    response = client.post(
        "/review/session", json={"token": bearer_token}, headers={"X-CSRF-Token": nonce.group(1)}
    )
    assert response.status_code == 200, response.text
    return client, response.json()["next"]


def test_a_clinician_is_refused_and_not_shown_the_link(site: str, settings: Settings) -> None:
    clinician, landing = log_in(site, token(settings, "dr-1"))
    with closing(clinician):
        assert landing.endswith("/review")
        refused = clinician.get("/review/admin/agreement", headers=HTML)
        assert refused.status_code == 403 and refused.json()["resourceType"] == "OperationOutcome"
        assert "compliance" in refused.json()["issue"][0]["diagnostics"]
        review = clinician.get("/review", headers=HTML)
        assert review.status_code == 200 and "/review/admin/agreement" not in review.text
    with httpx.Client(base_url=site) as client:
        for sub, role in (("dr-2", "clinician"), ("eng", "ml-engineer"), ("ehr", "cds-client")):
            refused = client.get("/review/admin/agreement", headers=bearer(settings, sub, role))
            assert refused.status_code == 403 and refused.json()["resourceType"] == "OperationOutcome"
            assert "κ" not in refused.text


def test_without_a_session_a_browser_logs_in_and_an_api_client_gets_401(
    site: str, settings: Settings
) -> None:
    with httpx.Client(base_url=site) as client:
        redirect = client.get("/review/admin/agreement", headers=HTML)
        assert redirect.status_code == 303 and redirect.headers["location"].endswith("/review/login")
        outcome = client.get("/review/admin/agreement")
        assert outcome.status_code == 401 and outcome.json()["resourceType"] == "OperationOutcome"
    officer, landing = log_in(site, token(settings, "officer", "compliance"))
    with closing(officer):
        assert landing.endswith("/compliance")  # the login form sends an officer to the dashboard
        page = officer.get("/review/admin/agreement", headers=HTML)
        assert page.status_code == 200 and rows_of(page.text, "by-clinician")
        assert "Back to reviewing" not in page.text  # a compliance officer does not review


def test_the_review_page_links_the_view_only_for_those_who_may_open_it(site: str, settings: Settings) -> None:
    both = ROLE_SCOPES["clinician"] + " system/AuditEvent.rs"
    with httpx.Client(base_url=site) as client:
        linked = client.get("/review", headers=bearer(settings, "dr-lead", scopes=both))
        assert linked.status_code == 200 and 'id="agreement-link"' in linked.text
        assert (
            client.get(
                "/review/admin/agreement", headers=bearer(settings, "dr-lead", scopes=both)
            ).status_code
            == 200
        )
        plain = client.get("/review", headers=bearer(settings, "dr-9"))
        assert plain.status_code == 200 and 'id="agreement-link"' not in plain.text


def test_an_empty_store_shows_the_empty_state(settings: Settings, live_server) -> None:
    with live_server(settings) as live, httpx.Client(base_url=live.url) as client:
        response = client.get("/review/admin/agreement", headers=bearer(settings, "officer", "compliance"))
    assert response.status_code == 200
    assert 'data-testid="empty"' in response.text and "Too little overlapping feedback" in response.text
    assert "0 clinician judgments" in response.text
    assert not Tables(response.text).tables  # no table at all


def test_judgments_that_do_not_overlap_show_the_empty_state(
    settings: Settings, world: World, live_server
) -> None:
    with transaction(deployment_store(settings)) as session:
        patient = generate_patients(world, 1, seed=5, today=TODAY)[0]
        row, _ = add_case(
            session, deidentify_case(patient.bundle, key=settings.deid_secret, today=TODAY), source="cds"
        )
        card = add_card(
            session,
            case_id=row.id,
            target="hypertension",
            prompt="treat hypertension ->",
            model_version="test@1",
            suggestions=[(d, render_response(world, d)) for d in DRUGS["hypertension"]],
        )
        a, b = card.suggestions
        record_review(session, ReviewEntry(card.id, a.id, b.id, choice="a", rating_a=4), clinician="c1")
    with live_server(settings) as live, httpx.Client(base_url=live.url) as client:
        response = client.get("/review/admin/agreement", headers=bearer(settings, "officer", "compliance"))
    assert response.status_code == 200 and 'data-testid="empty"' in response.text
    assert "(2 clinician judgments" in response.text  # a pairwise choice and a rating, by one clinician


# --- in the browser ------------------------------------------------------------------------------


@pytest.mark.browser
def test_a_compliance_officer_logs_in_reads_the_tables_and_logs_out(page, settings: Settings) -> None:
    from playwright.sync_api import expect

    page.goto("/review/admin/agreement")  # not logged in: sent to the login form
    expect(page).to_have_url(re.compile(r"/review/login$"))
    page.fill("#token", token(settings, "officer", "compliance"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/compliance$"))  # an officer lands on the dashboard
    page.get_by_role("link", name="Clinician agreement").first.click()
    expect(page).to_have_url(re.compile(r"/review/admin/agreement$"))
    expect(page.get_by_test_id("by-case-type").locator("tbody tr")).to_have_count(8)
    expect(page.get_by_test_id("by-clinician").locator("tbody tr")).to_have_count(len(DOCTORS))
    with deployment_store(settings)() as session:
        choices, types = pairwise_choices(export_judgments(session))
    fleiss = per_case_type(choices, types, n_boot=N_BOOT)["diabetes"]
    row = page.get_by_test_id("by-case-type").locator("tbody tr", has_text=FLEISS).first
    expect(row.locator(".group")).to_have_text("diabetes")
    expect(row.locator(".estimate")).to_have_text(f"{fleiss.estimate:.3f}")
    expect(row.locator(".items")).to_have_text(str(fleiss.items))
    page.click("#logout")  # common.js's handler: the session ends, the login form comes back
    expect(page).to_have_url(re.compile(r"/review/login$"))
    page.goto("/review/admin/agreement")
    expect(page).to_have_url(re.compile(r"/review/login$"))
    assert not page.errors, page.errors  # no script error, no CSP violation
