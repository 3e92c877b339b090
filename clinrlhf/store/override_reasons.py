"""The override reasons cards offer, the ones feedback may name, and what each tells the reward
model: one table.

Cards offer CDS Hooks 3.0's suggested clinical set of non-adherence reasons
(https://cds-hooks.hl7.org ValueSet-non-adherence-reason-clinical), codes and displays exactly as
the HL7 CodeSystem `non-adherence-reason-codes` defines them. Feedback may name any code of that
CodeSystem (a client "MAY augment the override reasons presented to the user with its own
reasons"; the standard ones it adds are a fixed list), and the five codes cards offered before 3.0,
so feedback on cards issued then still counts. Only codes from this table are ever stored, never a
string a client made up (it could carry PHI).

Each reason carries a signal for reward training (`clinrlhf.reward.pairs`):
- "clinical": the clinician judged the recommended suggestion clinically wrong for this patient
  (a contraindication, evidence or local policy against it, an outcome they fear). An override
  for such a reason is a preference against the suggestion.
- "non-clinical": the override says nothing about the suggestion's clinical quality (the patient's
  preference, cost or coverage, an order already placed, the wrong moment in the workflow). It
  yields no preference pair: a right suggestion the patient declined must not be taught as wrong.
- None: no reason was stated ("other", or none at all); read as any override always was.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from clinrlhf.feedback.judgment import OverrideSignal

SYSTEM = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
# The codes cards offered before CDS Hooks 3.0: still accepted on feedback, still read.
LEGACY_SYSTEM = "https://clinrlhf.dev/fhir/CodeSystem/override-reason"


@dataclass(frozen=True)
class Reason:
    system: str
    code: str
    display: str
    signal: OverrideSignal | None


def _hl7(code: str, display: str, signal: OverrideSignal) -> Reason:
    return Reason(SYSTEM, code, display, signal)


C: OverrideSignal = "clinical"
N: OverrideSignal = "non-clinical"
# The CodeSystem in its own order: each category, then its codes.
REASONS: tuple[Reason, ...] = (
    _hl7("cds-not-applicable", "PC CDS does not apply to patient", N),
    _hl7("patient-ineligible", "Patient does not meet eligibility for recommended action", C),
    _hl7("indication-order-exists", "Patient has indication/order for intended action", N),
    _hl7("action-completed", "Recommended action was already completed", N),
    # Tried before and failed in this patient: for them the suggestion is the worse choice.
    _hl7("action-unsuccessful", "Recommended action was previously unsuccessful", C),
    _hl7(
        "action-performed-no-adverse-effect",
        "Intended action was performed previously without adverse effect",
        N,
    ),
    _hl7(
        "action-not-priority",
        "Recommended action is not relevant or a priority in current state of health",
        N,
    ),
    _hl7("cds-suboptimal-context", "PC CDS delivered in suboptimal context", N),
    _hl7("limited-time", "Could not address recommended action due to limited time", N),
    _hl7("wrong-time-workflow", "PC CDS delivered at wrong time in workflow or patient lifecycle", N),
    _hl7("inappropriate-recipient", "PC CDS delivered to inappropriate recipient/role", N),
    _hl7(
        "need-more-info",
        "Could not address recommended action due to need for more information/pending results/"
        "pending consult",
        N,
    ),
    _hl7(
        "recipient-disagrees-evidence",
        "Recipient disagrees with recommendation because of issues with the evidence",
        C,
    ),
    _hl7("does-not-align-latest-evidence", "Recommended action does not align with the latest evidence", C),
    _hl7("expert-contradicts", "Advice from expert contradicts the recommended action", C),
    # The reward model learns this hospital's clinicians: its own guideline is the preference.
    _hl7("policy-contradicts", "Institutional policy/guideline contradicts the recommended action", C),
    _hl7("recipient-does-not-trust", "Recipient does not agree with or trust the recommended action", C),
    _hl7("recipient-concerns-outcomes", "Recipient has concerns regarding potential health outcomes", C),
    _hl7("risk-benefit-ratio", "Recipient assessment of risk/benefit ratio", C),
    _hl7("mitigate-risk-negative-outcome", "Action taken to mitigate risk of negative outcome", C),
    _hl7("likely-negative-health-outcomes", "Recommended action likely to have negative health outcomes", C),
    _hl7("patient-contraindication", "Patient has contraindication to recommended action", C),
    _hl7("does-not-align-preferences", "Recommendation does not align with patient preferences or values", N),
    _hl7("patient-fears-discomfort", "Patient fears discomfort from complying with recommended action", N),
    _hl7(
        "patient-does-not-want-change",
        "Patient does not want to change behavior or believes the change is unnecessary",
        N,
    ),
    _hl7(
        "cultural-religious-reason",
        "Patient has a cultural or religious reason for not following recommended action",
        N,
    ),
    _hl7("prefers-alternative", "Patient prefers an alternative approach or treatment", N),
    _hl7("patient-refuses", "Patient refuses/declines (no context given)*", N),
    _hl7("not-convenient-feasible", "Recommendation is not convenient or feasible", N),
    _hl7("inadequate-support", "Patient has inadequate caregiver/social support", N),
    _hl7("service-not-available", "Treatment or service is not practically available", N),
    _hl7(
        "implementation-challenges",
        "Recommended action cannot be implemented due to technology/challenges",
        N,
    ),
    _hl7("too-costly-uncovered", "Recommended action is too costly or not covered by insurance", N),
    _hl7(
        "recipient-does-not-understand",
        "Recipient does not understand the recommended action or know how to perform the recommended action",
        N,
    ),
    _hl7(
        "comorbidity-disability",
        "Patient has co-morbidity or disability that hinders them from completing recommended action",
        N,
    ),
    Reason(LEGACY_SYSTEM, "contraindicated", "Contraindicated for this patient", C),
    Reason(LEGACY_SYSTEM, "patient-preference", "Patient preference", N),
    Reason(LEGACY_SYSTEM, "already-treated", "Already treated", N),
    Reason(LEGACY_SYSTEM, "not-indicated", "Not indicated", C),
    Reason(LEGACY_SYSTEM, "other", "Other", None),
)
_BY_KEY = {(r.system, r.code): r for r in REASONS}
# ValueSet-non-adherence-reason-clinical, in its order: what every card offers.
OFFERED: tuple[Reason, ...] = tuple(
    _BY_KEY[(SYSTEM, code)]
    for code in (
        "cds-not-applicable",
        "cds-suboptimal-context",
        "recipient-disagrees-evidence",
        "recipient-concerns-outcomes",
        "does-not-align-preferences",
        "not-convenient-feasible",
        "action-completed",
        "patient-contraindication",
        "patient-refuses",
        "too-costly-uncovered",
        "service-not-available",
        "recipient-does-not-understand",
    )
)


class Known(Enum):
    OURS = "ours"  # a code of this table: stored as sent
    FOREIGN = "foreign"  # the client's own system: the outcome counts, the reason is not stored
    INVALID = "invalid"  # claims one of our systems (or none) with a code it does not define


def lookup(system: str | None, code: str | None) -> Reason | None:
    """The reason (system, code) names; a code without a system is read in the system defining it."""
    if code is None:
        return None
    if system is None:
        return _BY_KEY.get((SYSTEM, code)) or _BY_KEY.get((LEGACY_SYSTEM, code))
    return _BY_KEY.get((system, code))


def classify(system: str | None, code: str | None) -> Known:
    if lookup(system, code) is not None:
        return Known.OURS
    return Known.INVALID if system in (None, SYSTEM, LEGACY_SYSTEM) else Known.FOREIGN


def is_known(system: str | None, code: str | None) -> bool:
    """Whether (system, code) may be stored: a code of this table."""
    return lookup(system, code) is not None


def signal_of(system: str | None, code: str | None) -> OverrideSignal | None:
    reason = lookup(system, code)
    return reason.signal if reason else None
