"""CDS Hooks 3.0 request and response bodies (https://cds-hooks.hl7.org/), which 2.0 clients also
send and read: 3.0 only adds optional elements to the ones this service uses."""

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
    icon: str | None = None
    topic: Coding | None = None


class _ActionBase(BaseModel):
    type: Literal["create", "update", "delete"]
    resource: dict[str, Any] | None = None
    resourceId: str | None = None  # 3.0: a relative reference, for delete (cds-resp-2)


class Action(_ActionBase):
    description: str  # cds-resp-5: every action of a suggestion has one


class SystemAction(_ActionBase):
    description: str | None = None  # optional for a systemAction only


class Link(BaseModel):
    label: str
    url: str
    type: Literal["absolute", "smart"]
    appContext: str | None = None  # cds-resp-3: only with type smart
    autolaunchable: bool | None = None


class CardSuggestion(BaseModel):
    label: str
    uuid: str  # optional in CDS Hooks; this service always sends one, as feedback names it
    isRecommended: bool = False
    actions: list[Action] = Field(default_factory=list)
    # 3.0 (STU): never sent, as a service "SHALL NOT make use of" it without knowing the client
    # supports it; kept so that the model describes a 3.0 suggestion in full.
    actionSelectionBehavior: Literal["all", "any", "at-most-one"] | None = None


class CdsCard(BaseModel):
    uuid: str  # optional in CDS Hooks; this service always sends one, as feedback names it
    summary: str = Field(max_length=139)  # "<140-character"
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[CardSuggestion] = Field(default_factory=list)
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] = Field(default_factory=list)
    links: list[Link] | None = None


class CDSResponse(BaseModel):
    cards: list[CdsCard]
    systemActions: list[SystemAction] | None = None  # absent, not empty, when there are none


class ServiceDefinition(BaseModel):
    hook: str
    title: str
    description: str
    id: str
    prefetch: dict[str, str]
    usageRequirements: str | None = None
    version: str | None = None  # 3.0: the semantic version of CDS Hooks the service implements
    hookVersion: str | None = None  # 3.0: the hook definition's version


class Discovery(BaseModel):
    services: list[ServiceDefinition]
