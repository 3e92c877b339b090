"""to_ndjson and from_ndjson are inverses, and a bad line is named by number, not content."""

from __future__ import annotations

import pytest

from clinrlhf.feedback import Judgment, to_ndjson
from clinrlhf.feedback.judgment import from_ndjson


def test_round_trip_keeps_every_field() -> None:
    judgments = [
        Judgment("rating", "c1", "p1", "dr", "treat x ->", ("a", "b"), ratings=(5, None)),
        Judgment("cds", "c2", "p2", "dr", "treat y ->", ("a",), accepted=None, correction="b"),
    ]
    assert from_ndjson(to_ndjson(judgments) + b"\n") == judgments


def test_a_line_that_is_not_a_judgment_is_named_without_its_content() -> None:
    with pytest.raises(ValueError, match="line 2 is not a judgment") as err:
        from_ndjson(
            to_ndjson([Judgment("pairwise", "c", "p", "d", "q", ("a", "b"))]) + b'{"name": "Jane Doe"}\n'
        )
    assert "Jane" not in str(err.value)
