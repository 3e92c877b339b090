"""The structure shows the architecture, and a test keeps it that way.

Dependencies point `services → clinrlhf → privacy`: `privacy` imports neither of the others and
`clinrlhf` never imports `services`. Inside `services`, the routers' shared pieces live below them
(`services/state.py`, `services/errors.py`), so `services/cds`, `services/fhir` and `services/web`
never import `services/api`. The top-level packages of `clinrlhf/` form no cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"privacy": 0, "clinrlhf": 1, "services": 2}


def imports_of(path: Path) -> Iterator[str]:
    """Every module `path` imports, at module level or inside a function (absolute names)."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def module_files(package: str) -> Iterator[tuple[str, Path]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations/versions" in path.as_posix():
            continue
        yield ".".join(path.relative_to(ROOT).with_suffix("").parts), path


def back_arrows(files: dict[str, list[str]]) -> list[str]:
    """`importer -> imported` for each import against services → clinrlhf → privacy."""
    found = []
    for importer, imported in files.items():
        for name in imported:
            top = name.split(".")[0]
            if top in LAYERS and LAYERS[top] > LAYERS[importer.split(".")[0]]:
                found.append(f"{importer} -> {name}")
    return found


def router_arrows(files: dict[str, list[str]]) -> list[str]:
    """Imports of `services.api` from the routers' packages below it."""
    below = ("services.cds", "services.fhir", "services.web")
    return [
        f"{importer} -> {name}"
        for importer, imported in files.items()
        if importer.startswith(below)
        for name in imported
        if name == "services.api" or name.startswith("services.api.")
    ]


def package_cycles(files: dict[str, list[str]]) -> list[list[str]]:
    """Cycles among the top-level packages of clinrlhf/ (clinrlhf.store, clinrlhf.feedback, …)."""

    def package(name: str) -> str | None:
        parts = name.split(".")
        return ".".join(parts[:2]) if parts[0] == "clinrlhf" and len(parts) > 1 else None

    graph: dict[str, set[str]] = {}
    for importer, imported in files.items():
        source = package(importer)
        if source is None:
            continue
        for name in imported:
            target = package(name)
            if target and target != source:
                graph.setdefault(source, set()).add(target)
    cycles, state, stack = [], {}, []  # state: 1 on the stack, 2 done

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


@pytest.fixture(scope="module")
def project() -> dict[str, list[str]]:
    return {name: list(imports_of(path)) for pkg in LAYERS for name, path in module_files(pkg)}


def test_dependencies_point_from_services_to_clinrlhf_to_privacy(project) -> None:
    assert back_arrows(project) == []


def test_the_routers_packages_never_import_the_api_package(project) -> None:
    assert router_arrows(project) == []


def test_the_packages_of_clinrlhf_form_no_cycle(project) -> None:
    assert package_cycles(project) == []


def test_the_checks_fail_when_an_arrow_is_added_against_the_rule() -> None:
    """The checks above could fail: each rule, broken on purpose, is reported."""
    assert back_arrows({"privacy.dp.canary_game": ["clinrlhf.reward.trainer"]}) == [
        "privacy.dp.canary_game -> clinrlhf.reward.trainer"
    ]
    assert back_arrows({"clinrlhf.store.db": ["services.api.deps"]}) != []
    assert router_arrows({"services.web.admin": ["services.api.deps"]}) == [
        "services.web.admin -> services.api.deps"
    ]
    assert package_cycles(
        {"clinrlhf.store.x": ["clinrlhf.feedback.y"], "clinrlhf.feedback.y": ["clinrlhf.store.x"]}
    ) == [["clinrlhf.feedback", "clinrlhf.store", "clinrlhf.feedback"]]


TRAINERS = ("clinrlhf.sft", "clinrlhf.reward", "clinrlhf.ppo", "clinrlhf.dpo", "clinrlhf.eval")


def trainer_arrows(files: dict[str, list[str]]) -> list[str]:
    """`trainer -> … -> clinrlhf.compliance.x` for each trainer module that reaches compliance,
    directly or through the project's modules it imports: trainers log through clinrlhf.lineage
    and never load the report, the registry or the governance code."""
    found = []
    for trainer in sorted(name for name in files if name.startswith(TRAINERS)):
        seen, queue = {trainer}, [[trainer]]
        while queue:
            path = queue.pop(0)
            for name in files.get(path[-1], []):
                if name == "clinrlhf.compliance" or name.startswith("clinrlhf.compliance."):
                    found.append(" -> ".join([*path, name]))
                elif name in files and name not in seen:
                    seen.add(name)
                    queue.append([*path, name])
    return found


def test_trainers_never_reach_compliance(project) -> None:
    assert trainer_arrows(project) == []


def test_the_trainer_check_fails_when_a_trainer_reaches_compliance() -> None:
    """Directly, or through a tracking module that imports compliance."""
    assert trainer_arrows({"clinrlhf.ppo.trainer": ["clinrlhf.compliance.report"]}) == [
        "clinrlhf.ppo.trainer -> clinrlhf.compliance.report"
    ]
    assert trainer_arrows(
        {
            "clinrlhf.reward.ledger": ["clinrlhf.lineage.odometer_names"],
            "clinrlhf.lineage.odometer_names": ["clinrlhf.compliance.privacy_spent"],
        }
    ) == ["clinrlhf.reward.ledger -> clinrlhf.lineage.odometer_names -> clinrlhf.compliance.privacy_spent"]
    assert trainer_arrows({"clinrlhf.pipeline.run": ["clinrlhf.compliance.registry"]}) == []
