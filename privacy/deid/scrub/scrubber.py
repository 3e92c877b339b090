"""Free-text scrubbing: recognizers find spans, one operator replaces them with `[TYPE]` tags."""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from privacy.deid.scrub.names import find_names
from privacy.deid.scrub.normalise import fold
from privacy.deid.scrub.patient_terms import PatientTerms
from privacy.deid.scrub.patterns import find_patterns
from privacy.deid.scrub.spans import Span, merge, replace_spans

# Ages over 89 are aggregated rather than removed (Safe Harbor keeps "90 or older").
DEFAULT_REPLACEMENTS: Mapping[str, str] = {"AGE": "90+"}


@dataclass(frozen=True)
class Scrubbed:
    text: str
    counts: Counter[str]  # entity type -> spans replaced


@dataclass(frozen=True)
class Scrubber:
    """Scrubs text for one patient: generic recognizers plus that patient's own identifiers."""

    terms: PatientTerms = field(default_factory=PatientTerms)
    replacements: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_REPLACEMENTS))

    def spans(self, text: str) -> list[Span]:
        """Spans of the original text, found in its folded copy (see `normalise`)."""
        folded = fold(text)
        found = merge([*find_patterns(folded.text), *find_names(folded.text), *self.terms.find(folded.text)])
        if folded.origin is None:
            return found
        return [Span(*folded.span(s.start, s.end), s.entity_type, s.score) for s in found]

    def scrub(self, text: str) -> Scrubbed:
        spans = self.spans(text)
        return Scrubbed(
            replace_spans(text, spans, dict(self.replacements)), Counter(s.entity_type for s in spans)
        )

    def scrub_base64(self, data: str) -> Scrubbed | None:
        """Decode a base64 UTF-8 attachment, scrub it and encode it again; None if it is not text."""
        try:
            text = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        done = self.scrub(text)
        return Scrubbed(base64.b64encode(done.text.encode("utf-8")).decode("ascii"), done.counts)
