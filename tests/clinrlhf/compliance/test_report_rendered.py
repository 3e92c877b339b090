"""The compliance report rendered from a recorded run (a real MLflow store, the screening's real
quality report, real bootstrap intervals, a real approval) has none of the defects a compliance
officer found in it: Python objects printed as text, PDF tables running off the page, a pooled κ
that contradicts the per-case-type κ without a word, clinician counts that disagree, a zero-width
interval for a group of six, "launched by root", and approvers named only by a 64-hex pseudonym."""

from __future__ import annotations

import json
import random
import re
from html.parser import HTMLParser

import mlflow
import pytest

from clinrlhf.compliance.approval import approve
from clinrlhf.compliance.criteria import AcceptanceCriteria
from clinrlhf.compliance.feedback_stats import feedback_stats
from clinrlhf.compliance.report import build_report
from clinrlhf.compliance.report_context import QUALITY_ARTIFACT
from clinrlhf.eval.bootstrap import interval_metrics, outcome_intervals
from clinrlhf.eval.evaluate import rates
from clinrlhf.feedback.judgment import Judgment
from clinrlhf.feedback.reliability import dawid_skene, preference_labels, rater_table
from clinrlhf.feedback.screening import ScreeningConfig, quality_report
from clinrlhf.identity import Principal, mint_token
from clinrlhf.lineage.chain import load_chain
from clinrlhf.lineage.facts import log_report_facts
from clinrlhf.lineage.launcher import LAUNCHED_BY, launcher_tags
from clinrlhf.pipeline.sample_run import CLINICIANS
from clinrlhf.world.scoring import Outcome

OFFICER = Principal(sub="officer-1", role="compliance", scopes=frozenset(), issuer="test", name="Dr. Ada Lee")
ADVERSARY = "dr-adversary-with-a-long-pseudonym"
CASES = ("atrial_fibrillation", "cystitis", "depression", "hyperlipidemia", "hypertension")


def _quality() -> dict:
    """The screening's quality report over a panel of the snapshot's three clinicians and one
    adversary (quarantined), judging five kinds of case."""
    rng = random.Random(0)
    accuracy = {**dict.fromkeys(CLINICIANS, 0.85), ADVERSARY: 0.05}
    judgments = []
    for card in range(120):
        truth, case = rng.randrange(2), CASES[card % len(CASES)]
        for rater in rng.sample(sorted(accuracy), 3):
            pick = truth if rng.random() < accuracy[rater] else 1 - truth
            judgments.append(
                Judgment(
                    "pairwise",
                    f"c{card}",
                    f"p{card}",
                    rater,
                    f"age 40-44 ; treat {case} ->",
                    ("a", "b"),
                    pick,
                )
            )
    result = dawid_skene(preference_labels(judgments))
    config = ScreeningConfig(n_boot=100)
    table = rater_table(result, config.outliers)
    return json.loads(json.dumps(quality_report(judgments, result, table, config, [ADVERSARY], 120)))


def _eval_with_a_group_of_six() -> dict[str, float]:
    """Eval metrics whose race group `nhpi` has six scenarios, all concordant."""
    rng = random.Random(1)
    outcomes, groups = [], []
    for i in range(200):
        small = i < 6
        outcomes.append(Outcome.CONCORDANT if small or rng.random() < 0.8 else Outcome.OFF_TARGET)
        groups.append({"sex": "female" if i % 2 else "male", "race": "nhpi" if small else "white"})
    metrics = {f"eval.{k}": v for k, v in rates(outcomes).items()}
    for attribute in ("sex", "race"):
        for group in sorted({g[attribute] for g in groups}):
            mine = [o for o, g in zip(outcomes, groups, strict=True) if g[attribute] == group]
            metrics |= {f"eval.{k}.{attribute}.{group}": v for k, v in rates(mine).items()}
    return metrics | interval_metrics(outcome_intervals(outcomes, groups, resamples=200, seed=0), "eval.")


@pytest.fixture
def html(sample) -> str:
    run = sample.good
    with mlflow.start_run(run_id=run.pipeline_run_id):
        mlflow.log_dict(_quality(), QUALITY_ARTIFACT)
        log_report_facts("sample-world 0", {"name:drop": 6}, {"clinicians on the panel": 4})
    with mlflow.start_run(run_id=run.stages["eval"]):
        mlflow.log_metrics(_eval_with_a_group_of_six())
    loose = AcceptanceCriteria(min_concordance=0.5, max_subgroup_gap=0.5)
    approve(
        sample.client,
        sample.sessions,
        run.version,
        OFFICER,
        sample.settings.deid_secret,
        criteria=loose,
    )
    chain = load_chain(sample.client, run.pipeline_run_id)
    return build_report(sample.client, chain, sample.settings.mlflow_tracking_uri, sessions=sample.sessions)


class _Tables(HTMLParser):
    """Each table after an element id, as rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.last_id, self.tables, self._cell = "", {}, None

    def handle_starttag(self, tag, attrs):
        found = dict(attrs).get("id")
        if found:
            self.last_id = found
        if tag == "table":
            self.tables.setdefault(self.last_id, []).append([])
            self._rows = self.tables[self.last_id][-1]
        elif tag == "tr":
            self._rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _tables(html: str) -> dict[str, list[list[list[str]]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def test_no_python_object_is_printed(html):
    assert "built-in method" not in html and " object at 0x" not in html
    rater_rows = _tables(html)["rater-reliability"][0][1:]
    case_rows = _tables(html)["case-agreement"][0][1:]
    assert all(row[6].isdigit() for row in rater_rows)  # the "items" column is a count
    assert all(row[1].isdigit() and int(row[1]) > 0 for row in case_rows)


def test_clinician_counts_agree_and_say_what_they_count(html):
    counts = re.search(
        r"Clinicians: (\d+) on the panel \(the rows of the reliability tables below\); (\d+) quarantined, "
        r"so (\d+) in the training snapshot",
        html,
    )
    assert counts, "no sentence reconciles the clinician counts"
    panel, quarantined, trained = map(int, counts.groups())
    assert (panel, quarantined, trained) == (4, 1, 3)
    assert len(_tables(html)["rater-reliability"][0]) - 1 == panel
    feedback = dict(row for row in _tables(html)["feedback"][0] if len(row) == 2)
    assert feedback["clinicians in the training snapshot (quarantined left out)"] == str(trained)
    assert "clinicians (pseudonymous)" not in feedback  # the unlabelled count that read as a contradiction


def test_pooled_kappa_is_comparable_with_the_per_case_type_kappa_and_explained(html):
    feedback = dict(row for row in _tables(html)["feedback"][0] if len(row) == 2)
    pooled = feedback["Fleiss' κ, all case types pooled (first / second / tie)"]
    explained = re.search(r'id="kappa-pooled">(.*?)</p>', html, re.S)
    assert explained and f"κ = {pooled}" in explained.group(1) and "same categories" in explained.group(1)


def test_a_group_of_six_gets_an_interval_of_nonzero_width(html):
    rows = [r for r in _tables(html)["subgroups"][0][1:] if r[:2] == ["race", "nhpi"]]
    (row,) = rows
    assert row[2] == "6" and row[4] == "1.000"
    low, high = map(float, re.match(r"(\d\.\d+)–(\d\.\d+) \(Wilson\)", row[5]).groups())
    assert high == 1.0 and low < 0.7  # Wilson's 95% interval for 6 of 6 is 0.61–1.00
    section = html[html.index('id="subgroups"') :]
    assert not re.search(r"(\d\.\d{3})–\1\b", section)  # no zero-width interval anywhere


def test_approvals_show_a_readable_name_and_the_custom_criteria(html):
    approvals = _tables(html)["approvals"][0]
    assert "Dr. Ada Lee" in approvals[1][1] and "compliance:" in approvals[1][1]
    notes = re.search(r'id="custom-criteria">(.*?)</ul>', html, re.S).group(1)
    assert "custom criteria used by Dr. Ada Lee (compliance)" in notes
    assert "min_concordance 0.5 (default 0.7)" in notes and "[pinned in the audit trail]" in notes


def test_launcher_is_never_the_bare_os_user(html, sample):
    assert re.search(r"launched by unverified: \S+", html)
    token = mint_token(sample.settings, role="ml-engineer", sub="eng-7", name="Dr. Bo Chen")
    assert launcher_tags(sample.settings, token)[LAUNCHED_BY] == "Dr. Bo Chen (ml-engineer)"
    assert launcher_tags(sample.settings, "forged")[LAUNCHED_BY].startswith("unverified: ")


def _overflowing(document) -> list[str]:
    """Text boxes reaching past the right edge of their page's content area."""
    found = []
    for number, page in enumerate(document.pages, 1):
        box = page._page_box
        right = box.content_box_x() + box.width + 0.5
        stack = [box]
        while stack:
            b = stack.pop()
            stack.extend(getattr(b, "children", []))
            if type(b).__name__ == "TextBox" and b.position_x + b.width > right:
                found.append(f"page {number}: {b.text[:40]!r}")
    return found


def test_pdf_tables_stay_on_the_page(html):
    weasyprint = pytest.importorskip("weasyprint")
    import logging

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    document = weasyprint.HTML(string=html).render()
    assert _overflowing(document) == []


def test_pooled_kappa_uses_the_per_case_type_categories_not_the_drug_names():
    """Two clinicians agree on three cards of four. Categories first/second (as per case type):
    P̄ = 0.75, shares 5/8 and 3/8, P_e = 34/64, κ = 0.467. Taking each drug name as its own category
    made chance agreement small and κ 0.68, near the observed agreement."""
    picks = {0: (0, 0), 1: (1, 1), 2: (0, 0), 3: (0, 1)}
    judgments = [
        Judgment(
            "pairwise", f"c{card}", f"p{card}", rater, "treat cystitis ->", (f"a{card}", f"b{card}"), pick
        )
        for card, both in picks.items()
        for rater, pick in zip(("r1", "r2"), both, strict=True)
    ]
    stats = feedback_stats(judgments)
    assert stats["agreement_observed"] == pytest.approx(0.75)
    assert stats["agreement_kappa"] == pytest.approx((0.75 - 34 / 64) / (1 - 34 / 64))
