"""`clinrlhf quarantine list|add|release`: whose feedback is held out of reward training.

The pipeline quarantines clinicians whose estimated reliability is an outlier (see
clinrlhf.feedback.screening); a person reviews them and releases them, or quarantines someone by
hand. Every decision is an event in the hash-chained audit trail, with its reason beside it, and is
taken by a compliance officer (a verified token; clinrlhf.compliance.governance decides who may).
"""

from __future__ import annotations

import argparse
import json

from clinrlhf.cli import CLIError
from clinrlhf.cli.identity_arg import add_token_argument, required_principal


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "quarantine",
        help="list, add or release clinicians whose feedback is held out of training",
        description="Quarantined clinicians' judgments are left out of reward training until a person "
        "releases them. Decisions are audit events (see `clinrlhf audit verify`); CLINICIAN is the "
        "pseudonym shown in the compliance report's reliability table.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="print who is quarantined, and why, as JSON")
    listing.add_argument("--history", action="store_true", help="every decision, not only the current state")
    listing.set_defaults(func=run_list)
    for name, helptext in (
        ("add", "quarantine a clinician by hand"),
        ("release", "let a reviewed clinician's feedback back into training"),
    ):
        action = actions.add_parser(name, help=helptext)
        action.add_argument("clinician", metavar="CLINICIAN", help="the clinician's pseudonym")
        action.add_argument("--reason", required=True, help="why (about the feedback; never patient details)")
        add_token_argument(action, "the deciding compliance officer's")
        action.set_defaults(func=run_decide, release=name == "release")


def _row(decision, reasons) -> dict:  # noqa: ANN001 - Decision and its Reason map
    reason = reasons.get(decision.event_id)
    return {
        "clinician": decision.clinician,
        "action": decision.action,
        "since": decision.recorded.isoformat(timespec="seconds") + "Z",
        "by": reason.by if reason else decision.actor,
        "actor": decision.actor,
        "audit_seq": decision.seq,
        "reason": reason.text if reason else None,
        "reason_verified": reason.verified if reason else False,
    }


def run_list(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from clinrlhf.settings import load_settings
    from clinrlhf.store import consistent_read, deployment_store
    from clinrlhf.store.quarantine import REASONS_FILE, decisions, read_reasons, replay

    settings = load_settings()
    try:
        with consistent_read(deployment_store(settings)) as session:
            history = decisions(session)
    except SQLAlchemyError as err:
        raise CLIError(f"cannot read the store ({type(err).__name__})") from None
    reasons = read_reasons(settings.resolved_home / REASONS_FILE, history)
    shown = history if args.history else list(replay(history).values())
    print(json.dumps([_row(d, reasons) for d in shown], indent=2))
    return 0


def run_decide(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from clinrlhf.compliance.governance import GovernanceRefused, decide_quarantine
    from clinrlhf.settings import load_settings
    from clinrlhf.store import deployment_store, transaction
    from clinrlhf.store.quarantine import REASONS_FILE, QuarantineError

    settings = load_settings()
    principal = required_principal(settings, args.token, f"quarantine {'release' if args.release else 'add'}")
    try:
        with transaction(deployment_store(settings)) as session:
            decision = decide_quarantine(
                session,
                principal,
                settings.deid_secret,
                args.clinician,
                release=args.release,
                reason=args.reason,
                reasons=settings.resolved_home / REASONS_FILE,
            )
    except (QuarantineError, GovernanceRefused) as err:
        raise CLIError(str(err)) from None
    except SQLAlchemyError as err:
        raise CLIError(f"cannot write the store ({type(err).__name__})") from None
    print(f"{decision.action} {decision.clinician}: audit event seq {decision.seq}")
    return 0
