"""CDS Hooks 3.0 hook requests, held to cds-r-1 (an error: fhirAuthorization needs a fhirServer) and
cds-r-2 (a warning only: with patient scopes, `fhirAuthorization.patient` SHOULD be given)."""

from __future__ import annotations

import httpx

from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

SERVICE = "/cds-services/clinrlhf-treatment"
AUTHORIZATION = {
    "access_token": "some-opaque-fhir-access-token",
    "token_type": "Bearer",
    "expires_in": 300,
    "scope": "patient/Patient.r patient/Observation.rs",
    "subject": "cds-service4",
}


def test_fhir_authorization_without_a_fhir_server_is_a_400_naming_cds_r_1(
    client: httpx.Client, auth, patient_view, world: World
) -> None:
    request = patient_view(generate_patients(world, 1, seed=31)[0].bundle)
    response = client.post(
        SERVICE, json={**request, "fhirAuthorization": AUTHORIZATION}, headers=auth("cds-client")
    )
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == "invariant" and "cds-r-1" in issue["diagnostics"]
    assert "some-opaque" not in response.text


def test_patient_scopes_without_a_patient_are_only_a_warning(
    client: httpx.Client, auth, patient_view, world: World
) -> None:
    """cds-r-2 is a SHOULD: the full prefetch is there, so the service answers."""
    request = patient_view(generate_patients(world, 1, seed=32)[0].bundle)
    body = {**request, "fhirServer": "https://ehr.example.org/fhir", "fhirAuthorization": AUTHORIZATION}
    response = client.post(SERVICE, json=body, headers=auth("cds-client"))
    assert response.status_code == 200, response.text
