"""The privacy budget ledger: what every reward training run spent, per data snapshot, in one JSON file.

Each entry records one run's mechanism (noise multiplier, sample rate, steps), its own δ and ε, and
the privacy unit, against the SHA-256 of the snapshot it trained on. Before a run starts,
`charge` composes every earlier run on that snapshot with the new one (privacy.dp.ledger) and
refuses, with BudgetExceededError, a run that would take the cumulative ε past the budget; a run it
accepts is recorded at once, before its first step, so a run that crashes still counts (what it
released, if anything, is not known).

The file is rewritten whole via os.replace (atomic on POSIX), and check-then-record happens under an
exclusive lock on a sibling `.lock` file, so two concurrent trainings cannot both pass the check.
Snapshots are independent: each has its own budget and spend.

Usage: `PrivacyLedger(settings.resolved_home / "privacy_ledger.json", Budget(epsilon=10, delta=1e-5))`.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from privacy.dp import Accountant, PrivacyUnit
from privacy.dp.ledger import Budget, BudgetExceededError, Mechanism, check_budget, composed_epsilon

LEDGER_FILE = "privacy_ledger.json"
_VERSION = 1

__all__ = ["LEDGER_FILE", "Budget", "BudgetExceededError", "LedgerEntry", "PrivacyLedger"]


@dataclass(frozen=True)
class LedgerEntry:
    snapshot_sha256: str
    noise_multiplier: float
    sample_rate: float
    steps: int
    delta: float
    """The run's own δ (its reported guarantee); the cumulative ε uses the budget's δ."""
    epsilon: float
    """The run's own ε at its own δ, as reported (inf without DP)."""
    privacy_unit: PrivacyUnit
    accountant: Accountant
    recorded_at: str
    label: str = ""

    @property
    def mechanism(self) -> Mechanism:
        return Mechanism(self.noise_multiplier, self.sample_rate, self.steps)


class PrivacyLedger:
    def __init__(self, path: Path, budget: Budget, accountant: Accountant = "prv") -> None:
        self.path, self.budget, self.accountant = Path(path), budget, accountant

    def entries(self, snapshot_sha256: str | None = None) -> list[LedgerEntry]:
        """Every recorded run, or those on one snapshot, oldest first."""
        rows = [LedgerEntry(**row) for row in self._read()]
        return [e for e in rows if snapshot_sha256 is None or e.snapshot_sha256 == snapshot_sha256]

    def spent(self, snapshot_sha256: str) -> float:
        """The cumulative ε of the snapshot's recorded runs, at the budget's δ."""
        mechanisms = [e.mechanism for e in self.entries(snapshot_sha256)]
        return composed_epsilon(mechanisms, self.budget.delta, self.accountant)

    def check(self, snapshot_sha256: str, mechanism: Mechanism, privacy_unit: PrivacyUnit = "pair") -> float:
        """The cumulative ε if this run went ahead; raises BudgetExceededError if over budget."""
        earlier = self.entries(snapshot_sha256)
        units = {e.privacy_unit for e in earlier} | {privacy_unit}
        if len(units) > 1:
            raise BudgetExceededError(
                f"snapshot {snapshot_sha256[:12]} has runs under privacy units {sorted(units)}; "
                "the ledger composes runs of one unit only"
            )
        return check_budget([e.mechanism for e in earlier], mechanism, self.budget, self.accountant)

    def charge(
        self,
        snapshot_sha256: str,
        mechanism: Mechanism,
        *,
        delta: float,
        epsilon: float,
        privacy_unit: PrivacyUnit = "pair",
        label: str = "",
    ) -> LedgerEntry:
        """Check the run against the budget and, if it fits, record it (atomically). -> its entry"""
        if not snapshot_sha256:
            raise ValueError("the ledger needs the SHA-256 of the data snapshot")
        with self._locked():
            self.check(snapshot_sha256, mechanism, privacy_unit)
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
            )
            self._write([*self._read(), asdict(entry)])
        return entry

    def _read(self) -> list[dict]:
        if not self.path.exists():
            return []
        data = json.loads(self.path.read_text())
        if data.get("version") != _VERSION:
            raise ValueError(f"{self.path}: unknown ledger version {data.get('version')!r}")
        return list(data["runs"])

    def _write(self, rows: list[dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # json writes inf as Infinity, which it reads back; a non-DP run is recorded honestly.
        text = json.dumps({"version": _VERSION, "runs": rows}, indent=2)
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
