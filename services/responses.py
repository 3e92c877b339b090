"""Response classes: FHIR resources go out as `application/fhir+json`."""

from __future__ import annotations

from starlette.responses import JSONResponse

FHIR_JSON = "application/fhir+json"


class FHIRResponse(JSONResponse):
    media_type = FHIR_JSON
