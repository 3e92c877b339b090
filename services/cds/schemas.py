"""CDS Hooks 2.0 request and response bodies (https://cds-hooks.hl7.org/2.0/)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_ID = Field(min_length=1, max_length=128)
# Ids of rows this service issued (uuid4), no longer than the columns that hold them.
_STORED_ID = Field(min_length=1, max_length=36)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")  # CDS Hooks reserves `extension` and may grow fields


class Coding(_Open):
    # No longer than the feedback columns (override_reason_system, override_reason_code).
    system: str | None = Field(default=None, max_length=256)
    code: str | None = Field(default=None, max_length=64)
    display: str | None = Field(default=None, max_length=512)


# --- requests ---------------------------------------------------------------------------------


class PatientViewContext(_Open):
    userId: str | None = Field(default=None, max_length=256)
    patientId: str = Field(min_length=1, max_length=256)
    encounterId: str | None = Field(default=None, max_length=256)


class FHIRAuthorization(_Open):
    access_token: str
    token_type: str
    expires_in: int
    scope: str = Field(max_length=4096)  # SMART App Launch v2 scopes (v1 accepted), space-separated
    subject: str
    patient: str | None = Field(default=None, max_length=256)  # 3.0: the patient of patient/ scopes


class CDSRequest(_Open):
    hook: str = Field(max_length=64)
    hookInstance: str = _ID
    fhirServer: str | None = Field(default=None, max_length=2048)
    fhirAuthorization: FHIRAuthorization | None = None
    context: PatientViewContext
    prefetch: dict[str, Any] | None = None


class AcceptedSuggestion(_Open):
    id: str = _STORED_ID


class OverrideReason(_Open):
    reason: Coding | None = None  # one of the card's overrideReasons; nothing else is stored
    userComment: str | None = None  # free text: only its presence is ever kept


class FeedbackItem(_Open):
    card: str = _STORED_ID
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] = Field(default_factory=list, max_length=16)
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: datetime


class FeedbackRequest(_Open):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=1000)


class FeedbackResult(BaseModel):
    stored: int = Field(description="entries stored by this request")
    duplicates: int = Field(description="entries already stored by an earlier request")


# --- responses --------------------------------------------------------------------------------


class Source(BaseModel):
    label: str
    url: str | None = None
    topic: Coding | None = None


class Action(BaseModel):
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None


class CardSuggestion(BaseModel):
    label: str
    uuid: str
    isRecommended: bool = False
    actions: list[Action] = Field(default_factory=list)


class CdsCard(BaseModel):
    uuid: str
    summary: str = Field(max_length=140)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[CardSuggestion] = Field(default_factory=list)
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] = Field(default_factory=list)


class CDSResponse(BaseModel):
    cards: list[CdsCard]


class ServiceDefinition(BaseModel):
    hook: str
    title: str
    description: str
    id: str
    prefetch: dict[str, str]
    usageRequirements: str | None = None


class Discovery(BaseModel):
    services: list[ServiceDefinition]
