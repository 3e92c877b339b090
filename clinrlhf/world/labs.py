"""The values a lab can physically take. A value outside them (NaN, ±Infinity, a negative eGFR,
1e308 mmol/L of potassium) is a broken or hostile record, not a patient: reading it would make a
card ("eGFR normal") from nonsense, and storing it would write non-standard JSON (NaN).

The bounds are generous on purpose: they refuse only what no living patient (or lab analyser) can
report, never a merely abnormal result.
"""

from __future__ import annotations

import math

# LOINC -> (lowest, highest) value physically possible, in the world's units.
PHYSICAL_RANGE = {
    "33914-3": (0.0, 300.0),  # eGFR (MDRD), mL/min/{1.73_m2}
    "62238-1": (0.0, 300.0),  # eGFR (CKD-EPI), mL/min/{1.73_m2}
    "2823-3": (0.0, 20.0),  # potassium, serum or plasma, mmol/L
    "6298-4": (0.0, 20.0),  # potassium, blood, mmol/L
}

# LOINC -> (name, unit) as the review page prints them. The unit is the world's: the UCUM code the
# records carry (clinrlhf.world.patients), mL/min/{1.73_m2} written as a clinician writes it.
LAB_DISPLAY = {
    "33914-3": ("eGFR", "mL/min/1.73 m²"),
    "62238-1": ("eGFR", "mL/min/1.73 m²"),
    "2823-3": ("potassium", "mmol/L"),
    "6298-4": ("potassium", "mmol/L"),
}


def is_possible(loinc: str, value: float) -> bool:
    """Whether `value` is a finite number the lab `loinc` can report; any finite value for a lab
    without a known range."""
    if not math.isfinite(value):
        return False
    low, high = PHYSICAL_RANGE.get(loinc, (-math.inf, math.inf))
    return low <= value <= high
