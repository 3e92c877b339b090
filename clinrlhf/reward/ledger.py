"""The privacy odometer of a deployment: every DP run on its clinicians' judgments, in one JSON file.

A deployment is one CLINRLHF_HOME: the pipeline and `clinrlhf train reward|dpo` charge the same
file. It keeps one odometer per privacy unit, across every snapshot, re-export and retrain, because
they all share people (a new export is the old one plus new judgments, in another order): keying the
budget by a snapshot's digest gave every re-export a fresh budget.

Each entry records one run's mechanism (noise multiplier, sample rate, steps), its own reported
(ε, δ), its privacy unit and n (the units it trained on), and the digest of its snapshot (for the
record only). Before a run starts, `charge` composes the unit's earlier runs with it under a Rényi
filter (privacy.dp.renyi_filter, valid however the retrains were chosen) at the deployment's δ, and
refuses with BudgetExceededError a run that would take the composed ε past the budget, or whose n
makes δ > 1/n. An admitted run is recorded at once, before its first step, so a run that crashes
still counts (what it released, if anything, is not known).

The deployment's δ (CLINRLHF_PRIVACY_DELTA) is written to the file on the first charge and never
changes: a ledger opened with another δ is refused by name. The filter's grid of orders is written
with it, so a later change of the default grid leaves an open odometer's filter as it was. Runs keep their own δ for their own guarantee; it never enters the composition.

The file is rewritten whole via os.replace (atomic on POSIX), and check-then-record happens under an
exclusive lock on a sibling `.lock` file, so two concurrent trainings cannot both pass the check.

Usage: `PrivacyLedger(settings.resolved_home / LEDGER_FILE, Budget(epsilon=24, delta=1e-6))`, or
`deployment_ledger(settings)`.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clinrlhf.lineage.odometer_names import (
    LEDGER_BUDGET,
    LEDGER_DELTA,
    LEDGER_EPSILON,
    LEDGER_RUNS,
    LEDGER_UNIT,
)
from privacy.dp import PRIVACY_UNITS, Accountant, PrivacyUnit
from privacy.dp.renyi_filter import (
    RDP_FILTER_ORDERS,
    Budget,
    BudgetExceededError,
    Mechanism,
    check_budget,
    check_delta_for_units,
    filter_epsilon,
)

if TYPE_CHECKING:
    from clinrlhf.settings import Settings

LEDGER_FILE = "privacy_ledger.json"
_VERSION = 2
_READABLE = (1, 2)  # version 1 keyed budgets by snapshot; its runs join the odometers unchanged

__all__ = [
    "LEDGER_FILE",
    "Budget",
    "BudgetExceededError",
    "LedgerEntry",
    "PrivacyLedger",
    "deployment_ledger",
]


@dataclass(frozen=True)
class LedgerEntry:
    snapshot_sha256: str
    noise_multiplier: float
    sample_rate: float
    steps: int
    delta: float
    """The run's own δ (its reported guarantee); the odometer composes at the deployment's δ."""
    epsilon: float
    """The run's own ε at its own δ, as reported (inf without DP)."""
    privacy_unit: PrivacyUnit
    accountant: Accountant
    """How the run's own ε was computed; the odometer always uses the Rényi filter."""
    recorded_at: str
    label: str = ""
    n_units: int | None = None
    """Privacy units the run trained on (None for runs recorded before it was kept)."""

    @property
    def mechanism(self) -> Mechanism:
        return Mechanism(self.noise_multiplier, self.sample_rate, self.steps)


class PrivacyLedger:
    def __init__(self, path: Path, budget: Budget, accountant: Accountant = "prv") -> None:
        """`budget.delta` is the deployment's δ (checked against the file's); `accountant` is the
        one the runs charged through this object computed their own ε with."""
        self.path, self.budget, self.accountant = Path(path), budget, accountant

    @property
    def delta(self) -> float:
        """The deployment's δ: the file's, once a run was charged; until then, the budget's."""
        recorded = self._read().get("delta")
        return float(recorded) if recorded is not None else self.budget.delta

    def entries(
        self, snapshot_sha256: str | None = None, *, privacy_unit: PrivacyUnit | None = None
    ) -> list[LedgerEntry]:
        """Every recorded run, or those on one snapshot or under one unit, oldest first."""
        rows = [LedgerEntry(**row) for row in self._read()["runs"]]
        return [
            e
            for e in rows
            if (snapshot_sha256 is None or e.snapshot_sha256 == snapshot_sha256)
            and (privacy_unit is None or e.privacy_unit == privacy_unit)
        ]

    def spent(self, privacy_unit: PrivacyUnit) -> float:
        """The odometer of one privacy unit: the filter's composed ε of its runs, at the deployment's δ."""
        if privacy_unit not in PRIVACY_UNITS:
            raise ValueError(f"an odometer is named by a privacy unit, one of {PRIVACY_UNITS}")
        data = self._read()
        mechanisms = [
            LedgerEntry(**row).mechanism for row in data["runs"] if row["privacy_unit"] == privacy_unit
        ]
        return filter_epsilon(mechanisms, self.delta, _orders(data))

    def preflight(self, privacy_unit: PrivacyUnit) -> None:
        """Refuse now what `charge` would refuse anyway, before hours of work lead up to it: a δ other
        than the deployment's, or an odometer that is already at its budget."""
        data = self._read()
        self._check_deployment(data)
        spent = self.spent(privacy_unit)
        if spent >= self.budget.epsilon:
            raise BudgetExceededError(
                f"privacy budget exhausted: the {privacy_unit} odometer stands at ε={spent:.3g} ≥ "
                f"max_cumulative_epsilon={self.budget.epsilon:g}; no further run can be admitted"
            )

    def odometer(self, privacy_unit: PrivacyUnit) -> tuple[dict[str, str], dict[str, float]]:
        """MLflow params and metrics of one odometer as it stands, for the run just charged to it."""
        params = {
            LEDGER_DELTA: f"{self.delta:.6g}",
            LEDGER_BUDGET: f"{self.budget.epsilon:g}",
            LEDGER_UNIT: privacy_unit,
        }
        metrics = {
            LEDGER_EPSILON: self.spent(privacy_unit),
            LEDGER_RUNS: float(len(self.entries(privacy_unit=privacy_unit))),
        }
        return params, metrics

    def charge(
        self,
        snapshot_sha256: str,
        mechanism: Mechanism,
        *,
        delta: float,
        epsilon: float,
        n_units: int,
        privacy_unit: PrivacyUnit = "pair",
        label: str = "",
    ) -> LedgerEntry:
        """Check the run against its unit's odometer and, if the filter admits it, record it
        (atomically) -> its entry. `delta` and `epsilon` are the run's own, for the record."""
        if not snapshot_sha256:
            raise ValueError("the ledger needs the SHA-256 of the data snapshot")
        with self._locked():
            data = self._read()
            self._check_deployment(data)
            check_delta_for_units(self.budget.delta, n_units, "the deployment's δ (CLINRLHF_PRIVACY_DELTA)")
            check_delta_for_units(delta, n_units, "this run's own δ")
            earlier = [
                LedgerEntry(**row).mechanism for row in data["runs"] if row["privacy_unit"] == privacy_unit
            ]
            check_budget(earlier, mechanism, self.budget, _orders(data))
            entry = LedgerEntry(
                snapshot_sha256,
                float(mechanism.noise_multiplier),
                float(mechanism.sample_rate),
                int(mechanism.steps),
                float(delta),
                float(epsilon),
                privacy_unit,
                self.accountant,
                datetime.now(UTC).isoformat(timespec="seconds"),
                label,
                int(n_units),
            )
            self._write(
                {
                    "version": _VERSION,
                    "delta": self.budget.delta,
                    "orders": list(_orders(data)),
                    "opened_at": data.get("opened_at") or entry.recorded_at,
                    "runs": [*data["runs"], asdict(entry)],
                }
            )
        return entry

    def _check_deployment(self, data: dict[str, Any]) -> None:
        recorded = data.get("delta")
        if recorded is not None and not math.isclose(float(recorded), self.budget.delta, rel_tol=1e-9):
            raise BudgetExceededError(
                f"this deployment's δ is {float(recorded):.3g}, fixed in {self.path.name} by its first run; "
                f"CLINRLHF_PRIVACY_DELTA={self.budget.delta:.3g} cannot change it"
            )

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"runs": []}
        data = json.loads(self.path.read_text())
        if data.get("version") not in _READABLE:
            raise ValueError(f"{self.path}: unknown ledger version {data.get('version')!r}")
        data["runs"] = [{"n_units": None, **row} for row in data["runs"]]
        return dict(data)

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # json writes inf as Infinity, which it reads back; a non-DP run is recorded honestly.
        text = json.dumps(data, indent=2)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _orders(data: dict[str, Any]) -> tuple[float, ...]:
    """The filter's orders: the file's, once recorded (the grid is part of the filter, fixed on
    first use), else the current default."""
    return tuple(float(a) for a in data.get("orders") or RDP_FILTER_ORDERS)


def deployment_ledger(settings: Settings, accountant: Accountant = "prv") -> PrivacyLedger:
    """The one ledger of this deployment, as the pipeline and `clinrlhf train` open it."""
    budget = Budget(settings.privacy_budget_epsilon, settings.privacy_delta)
    return PrivacyLedger(settings.resolved_home / LEDGER_FILE, budget, accountant)
