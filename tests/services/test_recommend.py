"""The served policy: the latest aligned one, followed as the pipeline publishes new ones."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from clinrlhf.policy.pointers import ProductionPolicy, set_latest_aligned, set_production
from clinrlhf.settings import Settings
from services.recommend import PolicyHolder, PolicyUnavailableError, model_version


def test_without_any_policy_the_holder_says_so(tmp_path: Path) -> None:
    with pytest.raises(PolicyUnavailableError, match="no aligned policy"):
        PolicyHolder(Settings(home=tmp_path)).get()


def test_the_holder_follows_the_latest_aligned_policy(tmp_path: Path, policy_dir: Path) -> None:
    home = tmp_path / "home"
    first, second = (
        shutil.copytree(policy_dir, tmp_path / "first"),
        shutil.copytree(policy_dir, tmp_path / "second"),
    )
    holder = PolicyHolder(Settings(home=home))
    set_latest_aligned(home, first)
    loaded = holder.get()
    assert loaded.policy_dir == first.resolve() and holder.get() is loaded  # loaded once
    set_latest_aligned(home, second)
    assert holder.get().policy_dir == second.resolve()
    assert holder.get().version.startswith("second@")


def test_an_explicit_policy_is_loaded_once_and_kept(tmp_path: Path, policy_dir: Path) -> None:
    holder = PolicyHolder(Settings(home=tmp_path, policy=policy_dir))
    loaded = holder.get()
    assert holder.get() is loaded and loaded.version == model_version(policy_dir)
    assert len(loaded.version.split("@")[1]) == 12


def test_a_policy_that_is_not_the_production_version_is_logged_as_not_approved(
    tmp_path: Path, policy_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    with caplog.at_level(logging.INFO, logger="services.recommend"):
        PolicyHolder(Settings(home=home, policy=policy_dir)).get()
    assert any(r.levelno == logging.WARNING and "NOT APPROVED" in r.getMessage() for r in caplog.records)
    caplog.clear()
    set_production(
        home, ProductionPolicy("clinrlhf-policy", "3", "models:/clinrlhf-policy/3", str(policy_dir))
    )
    with caplog.at_level(logging.INFO, logger="services.recommend"):
        PolicyHolder(Settings(home=home)).get()
    (line,) = [r.getMessage() for r in caplog.records]
    assert "production version clinrlhf-policy v3" in line and "NOT APPROVED" not in line
