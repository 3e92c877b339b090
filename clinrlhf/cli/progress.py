"""Rich progress bars: one bar per stage, driven by (done, total) callbacks from the trainers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


class StageProgress:
    def __init__(self, progress: Progress) -> None:
        self._progress, self._tasks = progress, dict[str, TaskID]()

    def callback(self, stage: str) -> Callable[[int, int], None]:
        def update(done: int, total: int) -> None:
            if stage not in self._tasks:
                self._tasks[stage] = self._progress.add_task(stage, total=total)
            self._progress.update(self._tasks[stage], completed=done, total=total)

        return update


@contextmanager
def stage_progress(console: Console | None = None) -> Iterator[StageProgress]:
    columns = (TextColumn("{task.description:<26}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console or Console(stderr=True), transient=False) as progress:
        yield StageProgress(progress)
