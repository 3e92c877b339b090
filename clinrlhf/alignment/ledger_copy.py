"""A copy of a home's privacy ledger, with an unlimited budget, charged instead of the home's own.

A finished home has usually spent most of its budget on its snapshot, so its ledger would (rightly)
refuse a comparison's DP runs. Charging a copy records every run and composes it with the home's,
which says what a hospital would spend running the same methods on the same data; the home's
ledger is only read.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from clinrlhf.reward.ledger import LEDGER_FILE, Budget, PrivacyLedger
from privacy.dp.renyi_filter import Mechanism, filter_epsilon

COPY_BUDGET_EPSILON = 1e9
"""The ledger copy's budget: large enough never to refuse, so every charge is recorded and composed."""


class LedgerCopy:
    """The copy of the home's ledger that this benchmark charges, and the ε after each charge."""

    def __init__(self, source: Path, work: Path, digest: str, delta: float, accountant: Any) -> None:
        self.path, self.digest, self.delta, self.accountant = work / LEDGER_FILE, digest, delta, accountant
        if source.exists():
            shutil.copyfile(source, self.path)
        else:
            self.path.unlink(missing_ok=True)
        # The copy keeps the home's δ, fixed by its first run; `delta` only if the home has none yet.
        self.delta = PrivacyLedger(self.path, Budget(COPY_BUDGET_EPSILON, delta)).delta
        self.ledger = PrivacyLedger(self.path, Budget(COPY_BUDGET_EPSILON, self.delta), accountant)
        self.home_entries = len(self.ledger.entries(digest))
        self.names: list[str] = []
        self.steps = [{"after": "the home's ledger (the pipeline)", "composed_epsilon": self.spent()}]

    def spent(self) -> float:
        """The Rényi filter's composed ε of every run on the snapshot, whatever its privacy unit (the
        home keeps one odometer per unit; all of them together bound each)."""
        runs = [e.mechanism for e in self.ledger.entries(self.digest)]
        return filter_epsilon(runs, self.delta)

    def record(self, what: str) -> float | None:
        """After a method ran: the snapshot's composed ε if it charged the ledger, else None."""
        charged = len(self.ledger.entries(self.digest)) - self.home_entries - len(self.names)
        if charged <= 0:
            return None
        self.names += [what] * charged
        spent = self.spent()
        self.steps.append({"after": what, "composed_epsilon": spent})
        return spent

    def mechanisms(self) -> tuple[list[Mechanism], list[tuple[str, Mechanism]]]:
        """(the home's runs on the snapshot, this benchmark's with the method that charged each)."""
        entries = [e.mechanism for e in self.ledger.entries(self.digest)]
        return entries[: self.home_entries], list(zip(self.names, entries[self.home_entries :], strict=True))

    def combinations(self) -> dict[str, float | None]:
        """The snapshot's ε with each method's run alone on top of the home's, then with all of them."""
        home, bench = self.mechanisms()
        combos: dict[str, float | None] = {}
        for name, mech in bench:
            combos[f"pipeline + {name}"] = finite_or_none(filter_epsilon([*home, mech], self.delta))
        if len(bench) > 1:
            combos["pipeline + " + " + ".join(n for n, _ in bench)] = finite_or_none(
                filter_epsilon([*home, *(m for _, m in bench)], self.delta)
            )
        return combos


def finite_or_none(x: float | None) -> float | None:
    """ε as JSON can hold it: None (no finite guarantee) for an infinite one."""
    return None if x is None or not math.isfinite(x) else x
