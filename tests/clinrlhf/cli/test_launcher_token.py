"""`clinrlhf pipeline` and `quickstart` name who launched the run from a verified token (`--token`
or CLINRLHF_TOKEN): its display name, never the container's OS user alone."""

import pytest

from clinrlhf.cli import main
from clinrlhf.cli.identity_arg import with_launcher
from clinrlhf.identity import mint_token
from clinrlhf.lineage.launcher import LAUNCHED_BY, LAUNCHED_BY_ACTOR, launcher_tags
from clinrlhf.settings import Settings


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CLINRLHF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CLINRLHF_TOKEN", raising=False)
    return Settings()


@pytest.mark.parametrize("command", ["pipeline", "quickstart"])
def test_a_bad_token_stops_the_run_before_any_training(settings, capsys, command):
    assert main([command, "--token", "forged"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "token rejected: token is malformed" in err
    assert not (settings.resolved_home / "runs").exists()


def test_the_token_given_names_the_launcher(settings):
    token = mint_token(settings, role="ml-engineer", sub="eng-7", name="Dr. Bo Chen")
    tags = launcher_tags(with_launcher(settings, token))
    assert tags[LAUNCHED_BY] == "Dr. Bo Chen (ml-engineer)"
    assert tags[LAUNCHED_BY_ACTOR].startswith("ml-engineer:") and "eng-7" not in tags[LAUNCHED_BY_ACTOR]


def test_without_a_token_the_os_user_is_marked_unverified(settings):
    assert launcher_tags(with_launcher(settings, None))[LAUNCHED_BY].startswith("unverified: ")
