"""Many clients at once, as the simulated panel runs: no request fails and nothing is lost."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from clinrlhf.settings import Settings
from clinrlhf.store import counts, deployment_store, verify_chain
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World


def test_parallel_cds_calls_feedback_and_reviews_all_succeed(
    server, auth, patient_view, world: World, api_settings: Settings
) -> None:
    patients = generate_patients(world, 16, seed=51)
    sessions = deployment_store(api_settings)
    with sessions() as session:
        before = counts(session)

    def visit(index: int) -> tuple[list[int], int, int]:
        statuses, feedback, reviews = [], 0, 0
        with httpx.Client(base_url=server.url, timeout=60) as client:
            response = client.post(
                "/cds-services/clinrlhf-treatment",
                json=patient_view(patients[index].bundle),
                headers=auth("cds-client", "application/json"),
            )
            statuses.append(response.status_code)
            for card in response.json().get("cards", []):
                entry = {
                    "card": card["uuid"],
                    "outcome": "overridden",
                    "outcomeTimestamp": "2026-01-01T00:00:00Z",
                }
                statuses.append(
                    client.post(
                        "/cds-services/clinrlhf-treatment/feedback",
                        json={"feedback": [entry]},
                        headers=auth("cds-client"),
                    ).status_code
                )
                feedback += 1
                if len(card["suggestions"]) == 2:
                    a, b = (s["uuid"] for s in card["suggestions"])
                    items = [
                        {"linkId": k, "answer": [{"valueString": v}]}
                        for k, v in (("card", card["uuid"]), ("suggestion-a", a), ("suggestion-b", b))
                    ]
                    items.append({"linkId": "choice", "answer": [{"valueCoding": {"code": "b"}}]})
                    body = {
                        "resourceType": "QuestionnaireResponse",
                        "status": "completed",
                        "item": items,
                        "questionnaire": "https://clinrlhf.dev/fhir/Questionnaire/clinrlhf-review",
                    }
                    statuses.append(
                        client.post(
                            "/fhir/QuestionnaireResponse",
                            json=body,
                            headers=auth("clinician", "application/fhir+json"),
                        ).status_code
                    )
                    reviews += 1
        return statuses, feedback, reviews

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(visit, range(len(patients))))
    statuses = [s for r in results for s in r[0]]
    assert set(statuses) <= {200, 201}, sorted(set(statuses))
    with sessions() as session:
        after = counts(session)
        assert verify_chain(session) is None
    assert after["cases"] - before["cases"] == len(patients)
    assert after["feedback"] - before["feedback"] == sum(r[1] for r in results)
    assert after["reviews"] - before["reviews"] == sum(r[2] for r in results)
