"""The compliance report renders from MLflow alone, as HTML with every section and as a PDF whose
pages are not blank."""

import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from PIL import Image

from clinrlhf.compliance.report import build_report, write_run_report
from clinrlhf.lineage.chain import load_chain

SECTIONS = {
    "summary",
    "acceptance",
    "approvals",
    "model-card",
    "hti1",
    "lineage",
    "privacy",
    "deid",
    "feedback",
    "training",
    "subgroups",
}


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.images: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs["src"])

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture
def report_html(sample):
    chain = load_chain(sample.client, sample.good.pipeline_run_id)
    return build_report(sample.client, chain, sample.settings.mlflow_tracking_uri, sessions=sample.sessions)


def test_html_has_every_section_and_its_plots(report_html):
    page = Page()
    page.feed(report_html)
    assert page.ids >= SECTIONS
    assert len(page.images) >= 4 and all(src.startswith("data:image/png;base64,") for src in page.images)
    text = " ".join(page.text)
    for expected in (
        "Quantitative analyses",  # a Mitchell et al. section
        "Caveats and recommendations",
        "Decision-making role",  # an HTI-1 source attribute
        "External validation process",
        "Fleiss' κ",  # feedback agreement
        "privacy spent ε",  # an acceptance criterion
        "Privacy ledger",
    ):
        assert expected in text


def test_subgroup_table_carries_bootstrap_intervals(report_html):
    assert report_html.count("–0.") >= 6  # "low–high" bounds for each group, concordance and unsafe


def test_pdf_renders_to_non_blank_pages(report_html, tmp_path):
    assert shutil.which("pdftoppm"), "pdftoppm is missing: apt-get install poppler-utils"
    files = write_run_report(report_html, tmp_path, "run", pdf=True)
    assert files.pdf is not None and files.pdf.read_bytes().startswith(b"%PDF")
    subprocess.run(
        ["pdftoppm", "-png", "-r", "40", str(files.pdf), str(tmp_path / "page")], check=True, timeout=120
    )
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) > 0
    first = Image.open(pages[0]).convert("L")
    lo, hi = first.getextrema()
    assert hi - lo > 100  # ink on paper, not a blank page
    assert sum(1 for v in first.getdata() if v < 200) > 0.01 * first.width * first.height


def test_the_report_prints_the_audit_head_its_run_recorded(sample) -> None:
    """The head each pipeline run records in MLflow (an anchor `clinrlhf audit verify` checks) is
    printed in the report, so a signed report carries it too."""
    head = f"{7}:{'ab' * 32}"
    sample.client.set_tag(sample.good.pipeline_run_id, "clinrlhf.audit_head", head)
    chain = load_chain(sample.client, sample.good.pipeline_run_id)
    html = build_report(sample.client, chain, sample.settings.mlflow_tracking_uri, sessions=sample.sessions)
    page = Page()
    page.feed(html)
    text = " ".join(" ".join(page.text).split())
    assert "audit-head" in page.ids
    assert f"Audit trail head recorded by this run: event 7, hash {'ab' * 32}" in text


def test_the_outcome_also_counts_the_test_scenarios_no_trainer_read_a_prompt_of(report_html):
    """A test prompt identical to a training prompt partly measures recall: the report shows the
    outcome on the rest apart (eval.unseen_prompts.*, logged by the eval stage)."""
    page = Page()
    page.feed(report_html)
    text = " ".join(" ".join(page.text).split())
    assert "Outcome on the test cohort" in text
    assert "whose prompt no trainer read (n = 40): concordance 0.500 before, 0.820 after" in text
