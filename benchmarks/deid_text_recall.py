"""Free-text PHI recall and precision on synthetic clinical notes, beside Presidio's pattern recognizers.

    python benchmarks/deid_text_recall.py --notes 1000 --out deid_text_recall.json

An identifier counts as found only if every letter and digit of it is covered by detected spans (a
partial hit still leaks). Precision is over detected spans: the share that overlaps some true
identifier. Presidio (presidio-analyzer, `pip install -e .[bench]`) runs its predefined pattern recognizers only, with
no spaCy model, so it has no name detection; it is scored on the same notes and the same rules.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from deid_notes import Note, make_notes  # noqa: E402

from privacy.deid.scrub import Scrubber, patient_terms  # noqa: E402

Detector = Callable[[Note], list[tuple[int, int]]]


def clinrlhf_detector(with_patient: bool) -> Detector:
    generic = Scrubber()

    def detect(note: Note) -> list[tuple[int, int]]:
        scrubber = Scrubber(patient_terms(note.patient)) if with_patient else generic
        return [(s.start, s.end) for s in scrubber.spans(note.text)]

    return detect


def presidio_detector() -> Detector | None:
    """Presidio's predefined pattern recognizers (no NLP engine, so no spaCy model), or None."""
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)  # its suffix-list download fails offline
    logging.getLogger("presidio-analyzer").setLevel(logging.CRITICAL)
    try:
        from presidio_analyzer import predefined_recognizers as pr
    except ImportError:
        return None
    names = [
        "EmailRecognizer",
        "PhoneRecognizer",
        "UsSsnRecognizer",
        "UrlRecognizer",
        "IpRecognizer",
        "DateRecognizer",
        "UsLicenseRecognizer",
        "UsPassportRecognizer",
        "UsBankRecognizer",
        "UsItinRecognizer",
        "MedicalLicenseRecognizer",
        "CreditCardRecognizer",
        "IbanRecognizer",
    ]
    recognizers = [getattr(pr, n)() for n in names if hasattr(pr, n)]

    def detect(note: Note) -> list[tuple[int, int]]:
        found = []
        for r in recognizers:
            found += [(x.start, x.end) for x in r.analyze(note.text, r.supported_entities, None)]
        return found

    return detect


def _covered(text: str, start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    hit = [False] * (end - start)
    for s, e in spans:
        for i in range(max(s, start), min(e, end)):
            hit[i - start] = True
    return all(h or not text[start + i].isalnum() for i, h in enumerate(hit))


def score(notes: Sequence[Note], detect: Detector) -> dict[str, Any]:
    found, total = Counter[str](), Counter[str]()
    true_spans = false_spans = 0
    started = time.perf_counter()
    for note in notes:
        spans = detect(note)
        for g in note.gold:
            total[g.entity_type] += 1
            found[g.entity_type] += _covered(note.text, g.start, g.end, spans)
        for s, e in spans:
            overlaps = any(s < g.end and g.start < e for g in note.gold)
            true_spans += overlaps
            false_spans += not overlaps
    seconds = time.perf_counter() - started
    return {
        "recall": sum(found.values()) / max(sum(total.values()), 1),
        "precision": true_spans / max(true_spans + false_spans, 1),
        "by_type": {k: round(found[k] / total[k], 4) for k in sorted(total)},
        "identifiers": sum(total.values()),
        "notes_per_second": len(notes) / seconds,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--name-locale",
        default="en_US",
        help="Faker locale of the names (e.g. en_IN: names the offline dictionary does not hold)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    notes = make_notes(args.notes, args.seed, args.name_locale)
    detectors: dict[str, Detector | None] = {
        "clinrlhf (generic recognizers)": clinrlhf_detector(with_patient=False),
        "clinrlhf (+ patient's own identifiers)": clinrlhf_detector(with_patient=True),
        "presidio (pattern recognizers only)": presidio_detector(),
    }
    results = {name: score(notes, d) for name, d in detectors.items() if d is not None}
    if detectors["presidio (pattern recognizers only)"] is None:
        print("presidio-analyzer is not installed: pip install -e '.[dev]' to compare", file=sys.stderr)
    types = sorted({t for r in results.values() for t in r["by_type"]})
    n_ids = next(iter(results.values()))["identifiers"]
    print(f"{args.notes} notes, {n_ids} identifiers, seed {args.seed}, names from {args.name_locale}\n")
    print(f"{'detector':42} {'recall':>7} {'precision':>9} {'notes/s':>8}")
    for name, r in results.items():
        print(f"{name:42} {r['recall']:7.4f} {r['precision']:9.4f} {r['notes_per_second']:8.0f}")
    print("\nrecall by identifier type\n" + f"{'type':12}" + "".join(f"{n.split()[0]:>12}" for n in results))
    for t in types:
        print(f"{t:12}" + "".join(f"{r['by_type'].get(t, 0):12.3f}" for r in results.values()))
    if args.out:
        args.out.write_text(
            json.dumps(
                {"notes": args.notes, "seed": args.seed, "name_locale": args.name_locale, "results": results},
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
