"""Run the simulated panel against a live clinrlhf server, over real HTTP.

The EHR calls the CDS service for each patient, a clinician at the point of care accepts or
overrides each card, and k reviewers compare the two suggestions on the review questionnaire.
Raw bundles stay in this process's memory: the server de-identifies them at the door.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from clinrlhf.eval.evaluate import subgroup_of
from clinrlhf.feedback.steering import SteeringConfig, steered_order
from clinrlhf.panel.clinicians import Clinician, PanelReview, cds_outcome, review_pair
from clinrlhf.panel.ehr import SERVICE_ID, card_drug_codes, hook_instance, patient_view_request
from clinrlhf.store import override_reasons
from clinrlhf.world.patients import SyntheticPatient
from clinrlhf.world.world import World

REVIEW_QUESTIONNAIRE = "https://clinrlhf.dev/fhir/Questionnaire/clinrlhf-review"
OVERRIDE_SYSTEM = override_reasons.SYSTEM  # the codes cards offer (CDS Hooks 3.0)
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


@dataclass(frozen=True)
class PanelConfig:
    reviewers_per_card: int = 2  # k: overlap, so agreement can be measured
    comment_rate: float = 0.2  # how often a reviewer writes a free-text comment
    concurrency: int = 8  # parallel HTTP clients
    seed: int | None = None  # None: derived from the pipeline seed in a run, 0 alone
    steering: SteeringConfig | None = None  # None: every patient offered, in order (the default)
    clinicians: int = 10  # the simulated panel's size (clinicians.panel_of)
    adversaries: int = 1  # how many of them are adversaries: 1 of 10 is the default 10%
    adversary_kind: str = "backwards"  # or "contraindication-blind" (clinicians.ADVERSARY_KINDS)


@dataclass
class PanelStats:
    cards: int = 0
    feedback: int = 0
    reviews: int = 0
    errors: list[str] = field(default_factory=list)


def _name(bundle: dict) -> str:
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    name = (patient.get("name") or [{}])[0]
    return " ".join([*name.get("given", []), name.get("family", "")]).strip()


def questionnaire_response(card: str, a: str, b: str, review: PanelReview, world: World) -> dict:
    items: list[dict] = [
        {"linkId": "card", "answer": [{"valueString": card}]},
        {"linkId": "suggestion-a", "answer": [{"valueString": a}]},
        {"linkId": "suggestion-b", "answer": [{"valueString": b}]},
        {"linkId": "choice", "answer": [{"valueCoding": {"code": review.choice}}]},
        {"linkId": "rating-a", "answer": [{"valueInteger": review.rating_a}]},
        {"linkId": "rating-b", "answer": [{"valueInteger": review.rating_b}]},
    ]
    if review.comment:
        items.append({"linkId": "comment", "answer": [{"valueString": review.comment}]})
    if review.correction:
        drug = world.drugs[review.correction]
        items.append(
            {
                "linkId": "correction",
                "answer": [{"valueCoding": {"system": RXNORM, "code": drug.rxnorm, "display": drug.key}}],
            }
        )
    return {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": REVIEW_QUESTIONNAIRE,
        "authored": datetime.now(UTC).isoformat(),
        "item": items,
    }


class PanelRun:
    def __init__(
        self,
        base_url: str,
        world: World,
        panel: Sequence[Clinician],
        tokens: dict[str, str],
        config: PanelConfig,
    ) -> None:
        self.base_url, self.world, self.panel, self.tokens, self.config = (
            base_url,
            world,
            panel,
            tokens,
            config,
        )
        self.stats = PanelStats()

    def _post(
        self, client: httpx.Client, path: str, token: str, body: dict, content_type: str
    ) -> httpx.Response:
        response = client.post(
            path, json=body, headers={"Authorization": f"Bearer {token}", "Content-Type": content_type}
        )
        if response.status_code >= 400:
            self.stats.errors.append(f"{path}: HTTP {response.status_code}")
        return response

    def one_patient(self, client: httpx.Client, index: int, patient: SyntheticPatient) -> None:
        rng = random.Random((self.config.seed or 0) * 1_000_003 + index)
        doctor = rng.choice(list(self.panel))  # the clinician at the point of care opens the chart
        request = patient_view_request(
            patient.bundle,
            user=f"Practitioner/{doctor.id}",
            instance=hook_instance(self.config.seed or 0, index),
        )
        response = self._post(
            client, f"/cds-services/{SERVICE_ID}", self.tokens["cds-client"], request, "application/json"
        )
        if response.status_code != 200:
            return
        for card in response.json().get("cards", []):
            self._judge_card(client, rng, patient, card, doctor)

    def _judge_card(
        self,
        client: httpx.Client,
        rng: random.Random,
        patient: SyntheticPatient,
        card: dict,
        doctor: Clinician,
    ) -> None:
        target_code, suggestions = card_drug_codes(card)
        target = self.world.target_by_snomed(target_code or "")
        if target is None or not suggestions:
            return
        self.stats.cards += 1
        drugs = [(d.key if (d := self.world.drug_by_rxnorm(code or "")) else None) for _, code in suggestions]
        reviewers = rng.sample(list(self.panel), k=min(self.config.reviewers_per_card, len(self.panel)))
        accepted, reason = cds_outcome(self.world, doctor, patient.facts, target.key, drugs, rng)
        self._send_feedback(client, card["uuid"], suggestions, accepted, reason, patient, rng)
        if len(suggestions) < 2:
            return
        for clinician in reviewers:
            review = review_pair(self.world, clinician, patient.facts, target.key, drugs[0], drugs[1], rng)
            if rng.random() < self.config.comment_rate:
                # Clinicians write names into comments; the server must scrub them at the door.
                review = PanelReview(
                    **{**review.__dict__, "comment": f"Discussed with {_name(patient.bundle)}."}
                )
            qr = questionnaire_response(
                card["uuid"], suggestions[0][0], suggestions[1][0], review, self.world
            )
            if (
                self._post(
                    client,
                    "/fhir/QuestionnaireResponse",
                    self.tokens[clinician.id],
                    qr,
                    "application/fhir+json",
                ).status_code
                < 300
            ):
                self.stats.reviews += 1

    def _send_feedback(
        self,
        client: httpx.Client,
        card: str,
        suggestions: list,
        accepted: int | None,
        reason: str | None,
        patient: SyntheticPatient,
        rng: random.Random,
    ) -> None:
        entry: dict = {
            "card": card,
            "outcome": "accepted" if accepted is not None else "overridden",
            "outcomeTimestamp": datetime.now(UTC).isoformat(),
        }
        if accepted is not None:
            entry["acceptedSuggestions"] = [{"id": suggestions[accepted][0]}]
        else:
            entry["overrideReason"] = {"reason": {"system": OVERRIDE_SYSTEM, "code": reason}}
            if rng.random() < self.config.comment_rate:
                entry["overrideReason"]["userComment"] = f"{_name(patient.bundle)} had this before."
        if (
            self._post(
                client,
                f"/cds-services/{SERVICE_ID}/feedback",
                self.tokens["cds-client"],
                {"feedback": [entry]},
                "application/json",
            ).status_code
            < 300
        ):
            self.stats.feedback += 1

    def selection(self, patients: Sequence[SyntheticPatient]) -> list[int]:
        """Indices of the patients to send, in order: all of them, or a steered draw that moves the
        feedback toward the configured subgroup shares (clinrlhf.feedback.steering)."""
        steering = self.config.steering
        if steering is None:
            return list(range(len(patients)))
        groups = [subgroup_of(p.facts).get(steering.attribute, "unknown") for p in patients]
        return steered_order(groups, steering, random.Random(self.config.seed or 0))

    def run(
        self, patients: Sequence[SyntheticPatient], progress: Callable[[int, int], None] | None = None
    ) -> PanelStats:
        done = 0
        chosen = self.selection(patients)

        def work(item: tuple[int, SyntheticPatient]) -> None:
            nonlocal done
            with httpx.Client(base_url=self.base_url, timeout=60.0) as client:
                self.one_patient(client, *item)
            done += 1
            if progress:
                progress(done, len(chosen))

        # A patient keeps its index (and so its random stream) whichever order it is sent in.
        with ThreadPoolExecutor(self.config.concurrency) as pool:
            list(pool.map(work, [(i, patients[i]) for i in chosen]))
        return self.stats
