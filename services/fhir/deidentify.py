"""`$deidentify` after HL7's DARTS draft (De-Identification, Anonymization, Redaction Toolkit
Services, http://hl7.org/fhir/us/darts/OperationDefinition/deidentify): what the operation reads
and what it answers. The route is `services/api/routes/deidentify.py`; the work is
`privacy.deid.batch`.

In: a Bundle, or the draft's Parameters with `identifiableData` (a Bundle) and `policy`. The draft
makes `policy` required and names codes such as HHS_SAFE_HARBOR_DETERMINISTIC_METHOD; this server
applies one policy, its rule file, so `policy` may be left out or must name that rule file (Safe
Harbor's code is refused: shifted dates are not Safe Harbor's years, see docs/deidentification.md).
The draft's asynchronous `identifiableDataFileUrls` (NDJSON at URLs) is not supported: the server
would fetch from URLs a caller chose. `clinrlhf deidentify` reads NDJSON.

Out: Parameters with `deidentifiedData` (the Bundle), `report` (counts only, as parts) and, when
some resources named no patient of the input, `unlinkedResources` (counts by resource type).

The draft's 1.0.0 ballot renames the operation `$de-identify` and its output `de-identifiedData`
(inputs unchanged); both names are served, each answering with its own output name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from privacy.deid.batch import Batch
from privacy.deid.ruleset import RuleSet

OPERATION_URL = "http://hl7.org/fhir/us/darts/OperationDefinition/deidentify"
BALLOT_OPERATION_URL = "http://hl7.org/fhir/us/darts/OperationDefinition/de-identify"
IN_DATA, IN_POLICY, IN_FILE_URLS = "identifiableData", "policy", "identifiableDataFileUrls"
OUT_DATA, OUT_REPORT, OUT_UNLINKED = "deidentifiedData", "report", "unlinkedResources"
BALLOT_OUT_DATA = "de-identifiedData"
_LIST_ITEM = "item"  # a list in the report is a part whose parts are all named "item"


class OperationInputError(ValueError):
    """The request cannot be de-identified. `status` is 400 (not the shape the operation reads) or
    422 (readable but refused); the message is fixed text and never quotes the request."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass(frozen=True)
class OperationInput:
    bundle: Mapping[str, Any]


def _bundle(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or value.get("resourceType") != "Bundle":
        raise OperationInputError(400, f"{where} must be a FHIR Bundle", "structure")
    entries = value.get("entry", [])
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise OperationInputError(400, f"{where}: Bundle.entry must be a list of entries", "structure")
    return value


def _policy(parameter: Mapping[str, Any], rules: RuleSet) -> None:
    value = parameter.get("valueString", parameter.get("valueCode"))
    if value not in (rules.name, f"{rules.name}@{rules.version}"):
        message = f"the only policy this server applies is its rule file, {rules.name}@{rules.version}"
        raise OperationInputError(422, message, "not-supported")


def read_input(body: Any, rules: RuleSet) -> OperationInput:
    """The Bundle to de-identify, from the body of `POST /fhir/$deidentify`."""
    if not isinstance(body, Mapping):
        raise OperationInputError(400, "the body must be a FHIR Bundle or Parameters", "structure")
    if body.get("resourceType") == "Bundle":
        return OperationInput(_bundle(body, "the body"))
    if body.get("resourceType") != "Parameters":
        raise OperationInputError(400, "the body must be a FHIR Bundle or Parameters", "structure")
    parameters = body.get("parameter", [])
    if not isinstance(parameters, list) or not all(isinstance(p, Mapping) for p in parameters):
        raise OperationInputError(400, "Parameters.parameter must be a list of parameters", "structure")
    names = [p.get("name") for p in parameters]
    if IN_FILE_URLS in names:
        message = (
            f"{IN_FILE_URLS} (NDJSON at URLs) is not supported: send {IN_DATA}, or use clinrlhf deidentify"
        )
        raise OperationInputError(422, message, "not-supported")
    if any(n not in (IN_DATA, IN_POLICY) for n in names) or len(set(names)) != len(names):
        message = f"the parameters are {IN_DATA} (a Bundle) and optionally {IN_POLICY}, each at most once"
        raise OperationInputError(400, message, "structure")
    if IN_DATA not in names:
        raise OperationInputError(400, f"the {IN_DATA} parameter (a Bundle) is required", "required")
    for parameter in parameters:
        if parameter["name"] == IN_POLICY:
            _policy(parameter, rules)
    data = next(p for p in parameters if p["name"] == IN_DATA)
    return OperationInput(_bundle(data.get("resource"), f"the {IN_DATA} parameter"))


def _value(value: bool | int | float | str) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int):
        return {"valueInteger": value}
    if isinstance(value, float):
        return {"valueDecimal": value}
    return {"valueString": str(value)}


def as_parameter(name: str, value: Any) -> dict[str, Any] | None:
    """A counts-only JSON value as a Parameters part: objects and lists become nested parts (a list's
    parts are named "item"), empty ones and nulls are left out (a part needs a value or parts)."""
    if isinstance(value, Mapping):
        parts = [p for k, v in value.items() if (p := as_parameter(str(k), v)) is not None]
        return {"name": name, "part": parts} if parts else None
    if isinstance(value, list | tuple):
        parts = [p for v in value if (p := as_parameter(_LIST_ITEM, v)) is not None]
        return {"name": name, "part": parts} if parts else None
    if value is None:
        return None
    return {"name": name, **_value(value)}


def report_from_parameter(parameter: Mapping[str, Any]) -> Any:
    """The JSON value `as_parameter` wrote: what a client reads the report back with."""
    parts = parameter.get("part")
    if parts is None:
        return next(v for k, v in parameter.items() if k.startswith("value"))
    if parts and all(p["name"] == _LIST_ITEM for p in parts):
        return [report_from_parameter(p) for p in parts]
    return {p["name"]: report_from_parameter(p) for p in parts}


def output(batch: Batch, data_name: str = OUT_DATA) -> dict[str, Any]:
    """The operation's answer: the de-identified Bundle (as `data_name`), its report and the
    unlinked counts."""
    parameters: list[dict[str, Any]] = [{"name": data_name, "resource": batch.bundle}]
    report = as_parameter(OUT_REPORT, batch.report.to_dict())
    unlinked = as_parameter(OUT_UNLINKED, dict(sorted(batch.unlinked.items())))
    parameters += [p for p in (report, unlinked) if p is not None]
    return {"resourceType": "Parameters", "parameter": parameters}
