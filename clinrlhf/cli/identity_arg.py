"""`--token`: who is running a command, verified the one way every bearer token is verified
(clinrlhf.identity.verify_token: the development key, or the identity providers' JWKS in
production). Governance commands and training read it; `-` reads it from stdin, and without the
flag CLINRLHF_TOKEN is used, so a token need never appear in shell history."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from clinrlhf.cli import CLIError

if TYPE_CHECKING:  # imported when a command reads its token, not when the parser is built (--help)
    from clinrlhf.identity import Principal
    from clinrlhf.settings import Settings


def add_token_argument(parser: argparse.ArgumentParser, whose: str) -> None:
    parser.add_argument(
        "--token",
        default=None,
        metavar="TOKEN",
        help=f"{whose} bearer token (`-` reads it from stdin, keeping it out of shell history; "
        "default: CLINRLHF_TOKEN)",
    )


def read_token(value: str) -> str:
    token = sys.stdin.readline().strip() if value == "-" else value.strip()
    if not token:
        raise CLIError("--token is empty")
    return token


def token_given(value: str | None, settings: Settings) -> str | None:
    """The token from `--token`, else CLINRLHF_TOKEN, else None."""
    if value is not None:
        return read_token(value)
    return settings.token.get_secret_value().strip() or None if settings.token else None


def verified_principal(settings: Settings, token: str) -> Principal:
    from clinrlhf.identity import MemoryJtiCache, TokenError, verify_token

    try:
        return verify_token(settings, token, MemoryJtiCache())
    except TokenError as err:
        raise CLIError(f"token rejected: {err}") from None


def required_principal(settings: Settings, value: str | None, action: str) -> Principal:
    """The verified holder of the token given; a command run without one is refused."""
    token = token_given(value, settings)
    if token is None:
        raise CLIError(
            f"{action} needs a compliance officer's token: --token TOKEN, --token - or CLINRLHF_TOKEN"
        )
    return verified_principal(settings, token)


def with_launcher(settings: Settings, value: str | None) -> Settings:
    """`settings` carrying the token of `--token` (verified now: a bad one stops the command before
    any training) for clinrlhf.lineage.launcher to name who launched the run."""
    from pydantic import SecretStr

    token = token_given(value, settings)
    if token is None:
        return settings
    verified_principal(settings, token)
    return settings.model_copy(update={"token": SecretStr(token)})
