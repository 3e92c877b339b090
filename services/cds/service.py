"""The `patient-view` service and its feedback endpoint, apart from HTTP.

Order matters for privacy: the prefetch becomes a Bundle, the Bundle is de-identified, and only the
de-identified facts go on to the policy and the store. The raw Bundle is never stored or logged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from clinrlhf.identity import Principal, actor, client_pseudonym, clinician_pseudonym
from clinrlhf.policy.generate import PolicySuggestion
from clinrlhf.store import FeedbackEntry, add_card, add_case, deidentify_case, override_reasons, record_audit
from clinrlhf.store.feedback import FeedbackJob
from clinrlhf.text.prompt import render_prompt
from clinrlhf.world.scoring import targets_of
from services.cds.attribution import check_user
from services.cds.cards import build_card
from services.cds.prefetch import bundle_from_prefetch
from services.cds.schemas import CDSRequest, CDSResponse, Coding, FeedbackItem, FeedbackResult
from services.cds.transparency import FhirLinks, label_card, record_model
from services.recommend import SUGGESTIONS_PER_CARD
from services.state import AppState

# Ask for one more than shown: a sampled text that names no drug is dropped, not shown.
_CANDIDATES = SUGGESTIONS_PER_CARD + 1


@dataclass(frozen=True)
class _Plan:
    target: str
    prompt: str
    suggestions: list[PolicySuggestion]


def _seed(hook_instance: str, target: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{hook_instance}\x00{target}".encode()).digest()[:8], "big")


def patient_view(
    state: AppState,
    session: Session,
    request: CDSRequest,
    principal: Principal,
    model_card_url: str,
    fhir_base: str,
) -> CDSResponse:
    """Raises AttributionError, PrefetchError, UnreadableRecordError or PolicyUnavailableError."""
    # Before anything is fetched or stored: may this client speak for the user it named?
    check_user(state.settings, principal, request.context.userId)
    bundle = bundle_from_prefetch(state.fhir_fetcher.fill(request, principal.sub))
    case = deidentify_case(bundle, key=state.deid_key, today=datetime.now(UTC).date())
    del bundle  # from here on only de-identified data exists in this request
    recommender = state.policies.get()
    plans = []
    for target in targets_of(state.world, case.facts):
        prompt = render_prompt(state.world, case.facts, target)
        drafts = recommender.suggest(
            state.world, prompt, seed=_seed(request.hookInstance, target), n=_CANDIDATES
        )
        named = [s for s in drafts if s.drug is not None][:SUGGESTIONS_PER_CARD]
        if named:
            plans.append(_Plan(target, prompt, named))
    user = request.context.userId
    clinician = clinician_pseudonym(state.deid_key, user) if user else None
    client = client_pseudonym(state.deid_key, principal)  # the client that asserted `user`
    who = actor(principal, state.deid_key)
    with session.begin():  # inference is done: hold the write lock only for the writes
        row, _ = add_case(session, case, source="cds")
        record_audit(session, actor=who, action="C", entity_type="Case", entity_id=row.id)
        device_id = record_model(session, recommender.identity)  # what drafted the cards (AI transparency)
        stored = []
        for plan in plans:
            card = add_card(
                session,
                case_id=row.id,
                target=plan.target,
                prompt=plan.prompt,
                model_version=recommender.version,
                clinician=clinician,
                client=client,
                suggestions=[(s.drug, s.text) for s in plan.suggestions],
                device_id=device_id,
            )
            record_audit(session, actor=who, action="C", entity_type="Card", entity_id=card.id)
            stored.append(card)
    patient_id = request.context.patientId
    links = FhirLinks(fhir_base)
    return CDSResponse(
        cards=[
            label_card(
                build_card(state.world, c, case.facts, patient_id, model_card_url),
                links=links,
                device_id=device_id,
            )
            for c in stored
        ]
    )


def stored_reason(reason: Coding | None) -> tuple[str | None, str | None]:
    """The (system, code) to store for a feedback's override reason. A reason of this service's
    table is stored in its own system (a code sent without one is read in the system defining it);
    a client's own reason (CDS Hooks 3.0: clients "MAY augment the override reasons") is not
    stored, though its outcome is; anything else is passed on for the store to refuse."""
    if reason is None:
        return None, None
    known = override_reasons.lookup(reason.system, reason.code)
    if known is not None:
        return known.system, known.code
    if override_reasons.classify(reason.system, reason.code) is override_reasons.Known.FOREIGN:
        return None, None
    return reason.system, reason.code


def feedback_entry(item: FeedbackItem) -> FeedbackEntry:
    """The entry to store. An override reason is kept as its coding only (`stored_reason`), and the
    free-text comment only as the fact that there was one."""
    reason = item.overrideReason.reason if item.overrideReason else None
    comment = item.overrideReason.userComment if item.overrideReason else None
    when = item.outcomeTimestamp
    when = when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when
    system, code = stored_reason(reason)
    return FeedbackEntry(
        card=item.card,
        outcome=item.outcome,
        accepted_suggestions=tuple(s.id for s in item.acceptedSuggestions),
        override_reason_system=system,
        override_reason_code=code,
        has_comment=bool(comment and comment.strip()),
        outcome_timestamp=when,
    )


async def record_feedback_items(
    state: AppState, items: Sequence[FeedbackItem], principal: Principal
) -> FeedbackResult:
    """Store every entry or none, and answer only once they are committed. The entries of concurrent
    requests share a transaction (`state.feedback_writer`, a group commit); each request's entries
    still stand or fall together. The clinician is the user the card was shown to, as the CDS request
    named them; failing that, the token's subject. Only the client a card was issued to may report
    its outcome.

    Raises NotFoundError (unknown card), WrongClientError or InvalidInputError."""
    job = FeedbackJob(
        entries=tuple(feedback_entry(item) for item in items),
        actor=actor(principal, state.deid_key),
        clinician=clinician_pseudonym(state.deid_key, principal.sub),
        client=client_pseudonym(state.deid_key, principal),
    )
    counts = await state.feedback_writer.submit(job)
    return FeedbackResult(stored=counts.stored, duplicates=counts.duplicates)
