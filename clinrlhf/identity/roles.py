"""Roles, and the SMART App Launch v2 scopes each one is granted.

| role          | who                                  | scopes                                                        |
|---------------|--------------------------------------|---------------------------------------------------------------|
| `clinician`   | a person reviewing suggestions       | `openid fhirUser launch/patient user/Questionnaire.rs`        |
|               |                                      | `user/QuestionnaireResponse.cr`                               |
| `cds-client`  | the EHR calling the CDS Hooks service | `system/CDSHooks.cr` (c: call the service, send feedback)    |
|               |                                      | `system/Provenance.rs` (the AI provenance of its cards)       |
| `ml-engineer` | trains and evaluates models          | `system/QuestionnaireResponse.rs system/Feedback.rs`          |
|               |                                      | `system/ModelCard.r`                                          |
| `compliance`  | audits privacy and lineage           | `system/AuditEvent.rs system/QuestionnaireResponse.rs`        |
|               |                                      | `system/Feedback.rs system/Provenance.rs`                     |
| `deidentifier`| a hospital system or data steward    | `system/Deidentify.c` (`POST /fhir/$deidentify` only)         |
|               | de-identifying its own exports       |                                                               |

Scopes follow SMART v2 syntax, `<context>/<resource>.<permissions>` with permissions drawn in order
from `cruds` (create, read, update, delete, search). `CDSHooks`, `Feedback` and `ModelCard` are not
FHIR resource types; they name this service's non-FHIR endpoints in the same syntax, as `Deidentify`
names the `$deidentify` operation: only the `deidentifier` holds it, and it holds nothing else, so
a system sending whole exports to be de-identified can read no judgments and no reports. Routes check
scopes, not role names, so a token from a hospital identity provider that carries scopes but no
`role` claim is authorised the same way, by its `user/` and `system/` scopes (a `patient/` scope
reaches one patient's record, and every route spans all patients, so it opens none). Discovery
(`GET /cds-services`), `GET /fhir/metadata`, the review Questionnaire, the model card, and the AI
transparency Device and model-card DocumentReference need any valid token, whatever its scopes.
"""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["clinician", "cds-client", "ml-engineer", "compliance", "deidentifier"]
ROLES: tuple[str, ...] = get_args(Role)

ROLE_SCOPES: dict[str, str] = {
    "clinician": "openid fhirUser launch/patient user/Questionnaire.rs user/QuestionnaireResponse.cr",
    "cds-client": "system/CDSHooks.cr system/Provenance.rs",
    "ml-engineer": "system/QuestionnaireResponse.rs system/Feedback.rs system/ModelCard.r",
    "compliance": "system/AuditEvent.rs system/QuestionnaireResponse.rs system/Feedback.rs system/Provenance.rs",
    "deidentifier": "system/Deidentify.c",
}
