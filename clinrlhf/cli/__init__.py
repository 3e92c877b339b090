"""The `clinrlhf` command line. Each subcommand lives in its own module with a `register` function."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from clinrlhf import __version__

# Subcommand modules, in the order `--help` lists them.
COMMANDS = (
    "quickstart",
    "serve",
    "token",
    "ingest",
    "deidentify",
    "stats",
    "export",
    "audit",
    "train",
    "pipeline",
    "report",
    "lineage",
    "approve",
    "promote",
    "rollback",
    "provenance",
    "quarantine",
)


class CLIError(Exception):
    """A failure the user can act on; printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clinrlhf",
        description="Improve a treatment-recommendation policy from clinicians' judgments: "
        "de-identified feedback, a DP reward model, KL-constrained PPO and MLflow lineage.",
        epilog="State lives in $CLINRLHF_HOME (default ./.clinrlhf). Start with `clinrlhf quickstart`.",
    )
    parser.add_argument("--version", action="version", version=f"clinrlhf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"clinrlhf.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Everything a command writes (the database, MLflow's store, logs, reports) is its owner's only,
    # whatever umask the shell or container left: they hold pseudonyms and audit trails.
    os.umask(0o077)
    # A command's output is its result and, on failure, one line: the development-key notice is
    # for the service, whose start-up prints it (`clinrlhf serve`), not for every command.
    logging.getLogger("clinrlhf.settings").addHandler(logging.NullHandler())
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CLIError as err:
        print(f"clinrlhf {args.command}: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `clinrlhf stats | head`: the reader left, nothing to report
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"clinrlhf {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())


def load_run_chain(run_id: str):  # noqa: ANN201 - returns clinrlhf.lineage.chain.Chain; imported lazily
    """The pipeline chain of `run_id` from the configured MLflow store, or a CLIError naming why not."""
    from mlflow.tracking import MlflowClient

    from clinrlhf.lineage.chain import RunNotFound, load_chain
    from clinrlhf.lineage.runs import configure_mlflow
    from clinrlhf.settings import load_settings

    configure_mlflow(load_settings())
    try:
        return load_chain(MlflowClient(), run_id)
    except RunNotFound as err:
        raise CLIError(str(err)) from None
