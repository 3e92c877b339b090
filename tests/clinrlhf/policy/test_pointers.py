"""Serving uses the version promoted to production, and the latest aligned policy when there is none."""

import json

import pytest

from clinrlhf.policy.pointers import (
    PolicyNotFoundError,
    ProductionPolicy,
    resolve_policy,
    set_latest_aligned,
    set_production,
)
from clinrlhf.settings import Settings


def _policy(folder):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({}))
    return folder


def test_production_is_preferred_to_the_latest_aligned_policy(tmp_path):
    settings = Settings(home=tmp_path / "home")
    latest, promoted = _policy(tmp_path / "latest"), _policy(tmp_path / "promoted")
    set_latest_aligned(settings.resolved_home, latest)
    assert resolve_policy(settings) == latest.resolve()  # no alias: as before
    set_production(
        settings.resolved_home,
        ProductionPolicy("clinrlhf-policy", "3", "models:/clinrlhf-policy/3", str(promoted)),
    )
    assert resolve_policy(settings) == promoted
    explicit = _policy(tmp_path / "explicit")
    assert resolve_policy(settings, str(explicit)) == explicit.resolve()  # an explicit policy still wins


def test_a_missing_production_policy_never_falls_back_to_an_unapproved_one(tmp_path):
    settings = Settings(home=tmp_path / "home")
    set_latest_aligned(settings.resolved_home, _policy(tmp_path / "latest"))
    set_production(
        settings.resolved_home,
        ProductionPolicy("clinrlhf-policy", "3", "models:/x/3", str(tmp_path / "gone")),
    )
    with pytest.raises(PolicyNotFoundError, match="production version 3 is missing"):
        resolve_policy(settings)
