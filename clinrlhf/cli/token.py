"""`clinrlhf token`: print a signed development bearer token."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from clinrlhf.cli import CLIError


class _Roles(Sequence[str]):
    """clinrlhf.identity's ROLES, looked up only when `token` parses its flags or prints its help:
    importing the identity package (keys, JWKS, the pseudonymiser's name lists) would otherwise be
    most of what every `clinrlhf --help` waits for."""

    def _roles(self) -> tuple[str, ...]:
        from clinrlhf.identity.roles import ROLES

        return tuple(ROLES)

    def __getitem__(self, index):  # type: ignore[no-untyped-def,override]  # Sequence's int and slice overloads
        return self._roles()[index]

    def __len__(self) -> int:
        return len(self._roles())


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "token",
        help="print a bearer token that `clinrlhf serve` accepts",
        description="Print an ES256-signed JWT for local and test use, signed with the key in $CLINRLHF_HOME/keys "
        "(created on first use). `clinrlhf serve` under the same $CLINRLHF_HOME accepts it. In production "
        "(CLINRLHF_ENV=production) tokens come from the hospital's identity provider instead.",
    )
    parser.add_argument(
        "--role", required=True, choices=_Roles(), metavar="ROLE", help="what the holder may do: %(choices)s"
    )
    parser.add_argument(
        "--sub", required=True, metavar="ID", help="who holds it (stored only as a pseudonym)"
    )
    parser.add_argument(
        "--name",
        default=None,
        metavar="NAME",
        help="display name (the `name` claim), shown where people read who approved or launched something",
    )
    parser.add_argument("--ttl", type=int, default=3600, metavar="SECONDS", help="lifetime (default 3600)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clinrlhf.identity import mint_token
    from clinrlhf.settings import MissingSecretError, load_settings

    if args.ttl <= 0:
        raise CLIError("--ttl must be a positive number of seconds")
    if not args.sub.strip():
        raise CLIError("--sub must not be empty")
    try:
        print(mint_token(load_settings(), role=args.role, sub=args.sub, ttl=args.ttl, name=args.name))
    except (MissingSecretError, ValueError) as err:  # ValueError: --ttl past the longest lifetime
        raise CLIError(str(err)) from None
    return 0
