"""Free text from the review page goes through the de-identification scrubber at the door.

The store keeps no free text (see `clinrlhf.store.models`): a review records only whether a
comment was written. Scrubbing first means that even that flag is computed from de-identified text,
and that the raw comment goes no further than this function.
"""

from __future__ import annotations

from functools import cache

from privacy.deid.scrub import Scrubber


@cache
def _scrubber() -> Scrubber:
    return Scrubber()  # loads its word lists once per process


def scrub_comment(text: str | None) -> str:
    """The comment with identifiers replaced by `[TYPE]` tags; empty for no comment."""
    if text is None or not text.strip():
        return ""
    return _scrubber().scrub(text).text.strip()
