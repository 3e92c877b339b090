"""The same seed gives the same snapshot, byte for byte, however the panel's threads interleave.

Each run is real: the API (services.api.app) on a real port in its own home and SQLite store, the
simulated panel posting to it over HTTP with 8 threads, then the audited export. Two homes share
the de-identification key (pseudonyms are keyed) and differ in everything else: database, signing
keys, card ids, thread timing, and the panel's concurrency."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
import torch
import uvicorn
from pydantic import SecretStr

from clinrlhf.identity.tokens import mint_token
from clinrlhf.panel.clinicians import panel_of
from clinrlhf.panel.session import PanelConfig, PanelRun
from clinrlhf.pipeline.cohorts import CohortSizes, make_cohorts
from clinrlhf.pipeline.server import free_port
from clinrlhf.policy.model import PolicyConfig, build_policy, save_policy
from clinrlhf.policy.tokenizer import build_tokenizer
from clinrlhf.settings import Settings
from clinrlhf.store.db import deployment_store, transaction
from clinrlhf.store.export import export_snapshot
from clinrlhf.text.prompt import vocabulary_corpus
from clinrlhf.world.world import World, load_world
from services.api.app import create_app

pytestmark = pytest.mark.slow
KEY = SecretStr("determinism-test-deid-key-synthetic-patients-only")
DAY = date(2025, 6, 1)


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory, world: World) -> Path:
    tokenizer = build_tokenizer(vocabulary_corpus(world))
    torch.manual_seed(0)
    config = PolicyConfig(n_layer=1, n_embd=32, n_head=2)
    return save_policy(build_policy(config, tokenizer), tokenizer, tmp_path_factory.mktemp("policy"))


@contextmanager
def _serving(settings: Settings) -> Iterator[str]:
    port = free_port()
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _snapshot(home: Path, policy_dir: Path, config: PanelConfig, patients_seed: int) -> bytes:
    """One panel run in a fresh home, then the export the pipeline trains on."""
    settings = Settings(home=home, policy=policy_dir, deid_key=KEY, database_url=None)
    world = load_world()
    patients = make_cohorts(world, CohortSizes(feedback=12), patients_seed, DAY).feedback
    panel = panel_of(config.clinicians, config.adversaries, config.adversary_kind)
    tokens = {c.id: mint_token(settings, role="clinician", sub=c.id) for c in panel}
    tokens["cds-client"] = mint_token(settings, role="cds-client", sub="simulated-ehr")
    with _serving(settings) as url:
        stats = PanelRun(url, world, panel, tokens, config).run(patients)
    assert not stats.errors and stats.reviews > 0
    with transaction(deployment_store(settings)) as session:
        return export_snapshot(session, actor="test", world=world).ndjson


def test_the_same_seed_gives_the_same_snapshot_bytes_and_another_seed_does_not(
    tmp_path: Path, policy_dir: Path
) -> None:
    config = PanelConfig(concurrency=8)
    first = _snapshot(tmp_path / "a", policy_dir, config, patients_seed=0)
    second = _snapshot(tmp_path / "b", policy_dir, replace(config, concurrency=3), patients_seed=0)
    assert first == second and first.count(b"\n") > 20
    other = _snapshot(tmp_path / "c", policy_dir, replace(config, seed=1), patients_seed=0)
    assert other != first
