"""The formulary is data a hospital edits: drug -> sigs and may_treat indications, apart from the
guideline's tiers, read by the validity check of PPO's reward and by parse_prescription."""

import json
from pathlib import Path

import pytest

from clinrlhf.formulary import FormularyError, load_formulary
from clinrlhf.world import load_world

W = load_world()
PACKAGED = Path(__file__).parents[3] / "clinrlhf" / "formulary" / "formulary.json"


def test_the_packaged_formulary_lists_every_drug_the_guideline_prescribes_for_each_target():
    formulary = load_formulary()
    for target in W.targets.values():
        for tier in target.tiers:
            for drug in tier.drugs:
                rxcui = W.drugs[drug].rxnorm
                assert formulary.may_treat(rxcui, target.snomed), (drug, target.key)
                assert W.drugs[drug].sig in formulary.sigs(rxcui)


def test_the_packaged_formulary_is_not_the_union_of_the_tiers():
    formulary = load_formulary()
    # Real may_treat relations the guideline never prescribes: metoprolol for hypertension,
    # ciprofloxacin for cystitis. A formulary derived from the tiers could not hold them.
    assert formulary.may_treat(W.drugs["metoprolol"].rxnorm, W.targets["hypertension"].snomed)
    assert "metoprolol" not in W.targets["hypertension"].drugs
    assert formulary.may_treat(W.drugs["ciprofloxacin"].rxnorm, W.targets["cystitis"].snomed)
    assert not formulary.may_treat(W.drugs["metformin"].rxnorm, W.targets["cystitis"].snomed)
    assert formulary.version.startswith("1.") and len(formulary.sha256) == 64


def test_every_relation_is_may_treat_with_a_source():
    formulary = load_formulary()
    for drug in formulary.drugs.values():
        assert drug.sigs and drug.name
        for indication in drug.indications:
            assert indication.relation == "may_treat" and indication.source and indication.display


def _packaged() -> dict:
    return json.loads(PACKAGED.read_text())


def _broken(doc: dict, how: str) -> dict:
    if how == "relation":
        doc["drugs"][0]["indications"][0]["relation"] = "may_prevent"
    elif how == "rxcui":
        doc["drugs"][0]["rxcui"] = "lisinopril"
    elif how == "duplicate":
        doc["drugs"].append(doc["drugs"][0])
    elif how == "no sigs":
        doc["drugs"][0]["sigs"] = []
    elif how == "misspelt key":
        doc["drugs"][0]["indication"] = doc["drugs"][0].pop("indications")
    elif how == "version":
        doc["version"] = "2.0.0"
    elif how == "format":
        doc["format"] = "something-else"
    return doc


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("relation", "relation is 'may_prevent'"),
        ("rxcui", "is not an RxCUI"),
        ("duplicate", "repeats RxCUI 29046"),
        ("no sigs", "sigs must be a non-empty list"),
        ("misspelt key", "unknown key 'indication'"),
        ("version", "not a 1.x formulary"),
        ("format", "format must be 'clinrlhf-formulary'"),
    ],
)
def test_a_malformed_file_is_refused_with_one_line_naming_the_file_and_the_problem(tmp_path, how, says):
    path = tmp_path / "formulary.json"
    path.write_text(json.dumps(_broken(_packaged(), how)))
    with pytest.raises(FormularyError) as err:
        load_formulary(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and says in message


def test_a_file_that_is_not_json_or_missing_is_refused_in_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for path in (bad, tmp_path / "missing.json"):
        with pytest.raises(FormularyError, match=r"^formulary .*: (not valid JSON|cannot be read)") as err:
            load_formulary(path)
        assert "\n" not in str(err.value)


def test_an_edit_to_the_file_is_seen_on_the_next_load(tmp_path):
    path = tmp_path / "formulary.json"
    doc = _packaged()
    path.write_text(json.dumps(doc))
    assert load_formulary(path).may_treat("6918", "59621000")  # metoprolol, hypertension
    metoprolol = next(d for d in doc["drugs"] if d["rxcui"] == "6918")
    metoprolol["indications"] = [i for i in metoprolol["indications"] if i["code"] != "59621000"]
    path.write_text(json.dumps(doc))
    assert not load_formulary(path).may_treat("6918", "59621000")
