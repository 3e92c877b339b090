"""Synthetic clinical notes with known PHI spans, generated with Faker from varied templates.

Each template is a list of literal text and `{SLOT}` placeholders; a slot draws a value from Faker and
records its span and entity type, so recall and precision can be scored exactly. Filler sentences
carry clinical numbers, drug doses and eponyms that must *not* be flagged, so precision means something.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from faker import Faker

_DATE_FORMATS = ("%m/%d/%Y", "%Y-%m-%d", "%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%m/%d/%y", "%-m/%-d/%Y")


@dataclass(frozen=True)
class Gold:
    start: int
    end: int
    entity_type: str
    value: str


@dataclass
class Note:
    text: str
    gold: list[Gold]
    patient: dict = field(default_factory=dict)  # a FHIR Patient holding the note's own identifiers


TEMPLATES = [
    "{NAME} is a {AGE_ANY}-year-old {SEX} seen on {DATE} for follow-up of hypertension. {FILLER} "
    "Plan discussed with Dr. {DR}. Call {PHONE} with questions.",
    "Patient: {NAME}\nMRN: {MRN}\nDOB: {DATE}\nAddress: {STREET}, {CITYLINE}\n\n{FILLER} {FILLER}",
    "Discharge summary for {NAME} (MRN {MRN}). Admitted {DATE}, discharged {DATE}. {FILLER} "
    "Follow up with Dr. {DR} at {PHONE}; fax records to fax {FAX}.",
    "Dr. {DR} spoke with the patient's daughter, {NAME}, at {PHONE}. {FILLER} She can be reached by email at {EMAIL}.",
    "Insurance: member ID {PLAN}. SSN {SSN}. Billing account # {ACCOUNT}. {FILLER}",
    "{NAME}, a {AGE_OLD}-year-old widow, lives at {STREET}, {CITYLINE}. {FILLER} {FILLER}",
    "Telehealth visit on {DATE} from IP {IPV4}. Patient portal: {URL}. {FILLER}",
    "Pt {NAME} reports chest pain since {DATE}. {FILLER} Contact {NAME} (spouse) at {PHONE}.",
    "Referral letter\nDear Dr. {DR},\nI am referring {NAME}, DOB {DATE}, MRN {MRN}. {FILLER}\nSincerely, Dr. {DR}",
    "Driver's license {LICENSE} and plate {PLATE} recorded after the motor vehicle accident on {DATE}. {FILLER}",
    "Pacemaker serial number {SERIAL} checked on {DATE}. {FILLER} Device clinic: {PHONE}.",
    "Email from {EMAIL} on {DATE}: patient asks about refills. {FILLER} Replied via {URL}.",
    "{FILLER} Mother {NAME} and father {NAME} present. Home phone {PHONE}. Zip code {ZIP}.",
    "Lab results reviewed on {DATE}. {FILLER} {FILLER} Results sent to {EMAIL} and to Dr. {DR}.",
    "Nursing note: {NAME} ambulated with assistance. {FILLER} Son {NAME} visited; he lives in {CITY}.",
    "Audit: chart accessed from {IPV6} on {DATE}. {FILLER}",
    "Social history: retired teacher, lives with wife {NAME} at {STREET}, {CITYLINE}. {FILLER}",
    "Vehicle VIN {VIN} involved in collision. Patient {NAME}, age {AGE_OLD}. {FILLER}",
    "Advance directive signed {DATE}; health care proxy {NAME}, phone {PHONE}, {EMAIL}. {FILLER}",
    "{FILLER} {FILLER} Next appointment {DATE} with Dr. {DR}. Questions: {PHONE}.",
]

FILLER = [
    "Blood pressure 142/88 mmHg, heart rate 76 bpm, temperature 37.1 C.",
    "Started lisinopril 10 mg daily and metformin 500 mg twice daily.",
    "eGFR 42 mL/min/1.73m2, potassium 5.3 mmol/L, HbA1c 7.8%.",
    "History of Parkinson disease and Hashimoto thyroiditis.",
    "Denies fever, chills, nausea or vomiting.",
    "Continue atorvastatin 40 mg nightly; recheck lipids in 3 months.",
    "CHA2DS2-VASc score 4; apixaban 5 mg twice daily recommended.",
    "Allergic to penicillin (hives). No known drug allergies otherwise.",
    "Weight 82.4 kg, BMI 27.9 kg/m2, SpO2 97% on room air.",
    "Assessment: type 2 diabetes mellitus with stage 3 chronic kidney disease.",
    "Follow up in 2 weeks. Return precautions reviewed with the patient.",
    "Chest X-ray shows no acute cardiopulmonary process.",
    "ECG: atrial fibrillation with rapid ventricular response, QTc 456 ms.",
    "Patient was counseled on smoking cessation for 10 minutes.",
    "Insulin glargine 20 units at bedtime; sliding scale with meals.",
    "White blood cell count 11.2, hemoglobin 10.8 g/dL, platelets 245.",
    "Will increase furosemide to 40 mg daily and monitor weight.",
    "May resume normal diet. Grade 2 systolic murmur at the left sternal border.",
    "Glasgow Coma Scale 15. Foley catheter removed on day 3; Holter monitor for 48 hours.",
    "Known Graves disease, Bell palsy in 2009, and Down syndrome in a sibling.",
    "Status post Whipple procedure. Murphy sign negative. Babinski downgoing bilaterally.",
    "COVID-19 PCR negative. Influenza vaccine given, lot number not recorded.",
    "Seen in the Emergency Department at General Hospital by the Cardiology team.",
    "Diagnoses: E11.9, I10, N18.3. Orders: CBC, BMP, TSH, lipid panel.",
    "Walks 2 miles daily. Lives independently. Drinks 2 glasses of wine per week.",
    "Amlodipine 5 mg, hydrochlorothiazide 12.5 mg; held warfarin for INR 3.4.",
    "Cardiac catheterization in 2019 showed 70% stenosis of the LAD.",
    "Reviewed with Pharmacy and Nutrition. Physical Therapy twice weekly.",
    "Hemoglobin A1c improved from 9.1% to 7.2% over 6 months.",
    "Parkinson disease stable on carbidopa-levodopa 25/100 three times daily.",
]


class _Slots:
    def __init__(self, fake: Faker, rng: random.Random, names: Faker) -> None:
        self.fake, self.rng, self.names = fake, rng, names

    def name(self) -> str:
        """A person's name without Faker's "Mr."/"MD" affixes: those are not identifiers."""
        f = self.names
        return self.rng.choice(
            [
                f.first_name,
                f.last_name,
                lambda: f"{f.first_name()} {f.last_name()}",
                lambda: f"{f.first_name()} {f.random_uppercase_letter()}. {f.last_name()}",
                lambda: f"{f.last_name()}, {f.first_name()}",
            ]
        )()

    def fill(self, slot: str) -> tuple[str, str | None]:
        """(text, entity type or None for non-PHI slots)."""
        f, r = self.fake, self.rng
        table: dict[str, Callable[[], tuple[str, str | None]]] = {
            "NAME": lambda: (self.name(), "NAME"),
            "DR": lambda: (self.names.last_name(), "NAME"),
            "DATE": lambda: (
                f.date_between(date(1930, 1, 1), date(2025, 12, 31)).strftime(r.choice(_DATE_FORMATS)),
                "DATE",
            ),
            "PHONE": lambda: (f.phone_number(), "PHONE"),
            "FAX": lambda: (f.phone_number(), "FAX"),
            "EMAIL": lambda: (f.email(), "EMAIL"),
            "SSN": lambda: (f.ssn(), "SSN"),
            "MRN": lambda: (
                r.choice(
                    [str(r.randint(10**6, 10**9)), f"{f.random_uppercase_letter()}{r.randint(10**6, 10**8)}"]
                ),
                "MRN",
            ),
            "PLAN": lambda: (f"{f.lexify('???').upper()}{r.randint(10**8, 10**9)}", "HEALTH_PLAN"),
            "ACCOUNT": lambda: (str(r.randint(10**7, 10**10)), "ACCOUNT"),
            "LICENSE": lambda: (f"{f.random_uppercase_letter()}{r.randint(10**7, 10**8 - 1)}", "LICENSE"),
            "PLATE": lambda: (f.license_plate(), "VEHICLE"),
            "VIN": lambda: (f.vin(), "VEHICLE"),
            "SERIAL": lambda: (
                f"{f.lexify('??').upper()}-{r.randint(10**4, 10**6)}-{r.randint(10, 99)}",
                "DEVICE",
            ),
            "STREET": lambda: (f.street_address(), "ADDRESS"),
            "CITYLINE": lambda: (
                f"{f.city()}, {f.state_abbr(include_territories=False)} {f.zipcode()}",
                "LOCATION",
            ),
            "CITY": lambda: (f.city(), "LOCATION"),
            "ZIP": lambda: (f.zipcode(), "ZIP"),
            "URL": lambda: (r.choice([f.url, f.uri])(), "URL"),
            "IPV4": lambda: (f.ipv4(), "IP"),
            "IPV6": lambda: (f.ipv6(), "IP"),
            "AGE_OLD": lambda: (str(r.randint(90, 104)), "AGE"),
            "AGE_ANY": lambda: (str(r.randint(18, 89)), None),
            "SEX": lambda: (r.choice(["man", "woman", "male", "female"]), None),
            "FILLER": lambda: (r.choice(FILLER), None),
        }
        return table[slot]()


def make_note(fake: Faker, rng: random.Random, names: Faker | None = None) -> Note:
    template = rng.choice(TEMPLATES)
    slots = _Slots(fake, rng, names or fake)
    text, gold = "", []
    for piece in re.split(r"(\{[A-Z_0-9]+\})", template):
        if not (piece.startswith("{") and piece.endswith("}")):
            text += piece
            continue
        value, kind = slots.fill(piece[1:-1])
        if kind:
            gold.append(Gold(len(text), len(text) + len(value), kind, value))
        text += value
    return Note(text, gold, _patient_of(gold))


def _patient_of(gold: list[Gold]) -> dict:
    """The FHIR Patient a real record would carry beside this note: its first name, MRN and phone."""
    first = {g.entity_type: g.value for g in reversed(gold)}
    patient: dict = {"resourceType": "Patient", "id": "bench"}
    if "NAME" in first:
        patient["name"] = [{"text": first["NAME"].removeprefix("Dr. ")}]
    if "MRN" in first:
        patient["identifier"] = [{"type": {"coding": [{"code": "MR"}]}, "value": first["MRN"]}]
    if "PHONE" in first:
        patient["telecom"] = [{"system": "phone", "value": first["PHONE"]}]
    return patient


def make_notes(n: int, seed: int = 0, name_locale: str = "en_US") -> list[Note]:
    """`n` notes; names come from Faker's `name_locale` (the rest is en_US)."""
    fake, names = Faker("en_US"), Faker(name_locale)
    fake.seed_instance(seed)
    names.seed_instance(seed + 1)
    rng = random.Random(seed)
    return [make_note(fake, rng, names) for _ in range(n)]
