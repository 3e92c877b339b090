"""The resource type names a de-identified reference may keep are FHIR's, as fhir.resources lists them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import fhir.resources.R4B as r4b
from fhir.resources.R4B.resource import Resource

from privacy.deid.resource_types import R4_ONLY_RESOURCE_TYPES, R4B_RESOURCE_TYPES, RESOURCE_TYPES


def _fhir_resources_r4b_names() -> set[str]:
    names: set[str] = set()
    for module_info in pkgutil.iter_modules(r4b.__path__):
        if module_info.name.startswith(("fhirtypes", "_")) or module_info.ispkg:
            continue
        module = importlib.import_module(f"{r4b.__name__}.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and issubclass(cls, Resource):
                names.add(cls.get_resource_type())
    return names - {"Resource", "DomainResource"}  # abstract: never the type of a reference's target


def test_the_r4b_list_is_the_one_fhir_resources_knows() -> None:
    assert _fhir_resources_r4b_names() == R4B_RESOURCE_TYPES


def test_r4_only_names_are_not_r4b_names_and_the_kept_types_are_all_listed() -> None:
    assert not R4_ONLY_RESOURCE_TYPES & R4B_RESOURCE_TYPES
    assert {
        "Patient",
        "Condition",
        "Observation",
        "MedicationRequest",
        "AllergyIntolerance",
    } <= RESOURCE_TYPES
    assert "John Smith" not in RESOURCE_TYPES and "patient" not in RESOURCE_TYPES
