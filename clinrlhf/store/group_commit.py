"""Group commit: the writes of many concurrent requests committed together by one writer.

A transaction has a fixed cost (BEGIN IMMEDIATE and the writer queue on SQLite, round trips and the
audit lock on PostgreSQL, reading the audit chain's head on both) and only one of them appends to
the audit chain at a time. So a request does not open its own: it hands its job to the writer of
its event loop and waits. The writer takes every job waiting, writes them in one transaction in a
worker thread, and only after the commit hands each job its result. While it writes, the next
batch gathers, so batches grow with the load and a lone request is written at once.

A job's own fault (its `write` returns an exception in the job's place) fails that job alone. A
batch whose transaction fails as a whole (the database refused a statement, or the commit) is
rolled back, so nothing in it was acknowledged, and each of its jobs is retried in a transaction of
its own: one bad job cannot take the others down with it. A retried job may find that its writes
did commit after all (a commit whose reply was lost), so `write` must be idempotent.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy import Connection, Engine

log = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")
Write = Callable[[Connection, Sequence[J]], list[R | Exception]]


@dataclass
class _Queue(Generic[J, R]):
    """The jobs of one event loop that wait for the writer, and whether it is at work."""

    waiting: list[tuple[J, asyncio.Future[R]]] = field(default_factory=list)
    writing: bool = False


class GroupCommit(Generic[J, R]):
    """Writes jobs in batches on `engine`: `write(connection, jobs)` returns, per job, its result or
    its own error; it runs inside a transaction that this class begins and commits.

    `size` weighs a job (say, its entries) and `max_size` caps the weight of a batch, so that the
    statements of one batch stay within the database's limits; a job heavier than that goes alone.
    """

    def __init__(
        self,
        engine: Engine,
        write: Write[J, R],
        *,
        size: Callable[[J], int] = lambda _job: 1,
        max_size: int = 1000,
    ) -> None:
        self.engine, self._write, self._size, self._max_size = engine, write, size, max_size
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue[J, R]] = (
            weakref.WeakKeyDictionary()
        )

    async def submit(self, job: J) -> R:
        """The job's result once its batch has committed; its error if it failed."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        done: asyncio.Future[R] = loop.create_future()
        queue.waiting.append((job, done))
        if not queue.writing:
            queue.writing = True
            loop.create_task(self._drain(queue))
        return await done

    def write_batch(self, jobs: Sequence[J]) -> list[R | Exception]:
        """Write `jobs` in one transaction, or, if it fails once begun, each in a transaction of its
        own. A transaction that cannot even begin (no connection, the writer queue timed out) fails
        every job: none of them is to blame, and retrying each alone would only multiply the wait.
        Blocks: call it from a worker thread (or a script)."""
        begun = False
        try:
            with self.engine.begin() as connection:
                begun = True
                return self._write(connection, jobs)
        except Exception as err:  # noqa: BLE001 -- it goes back to the job's caller, or the jobs retry
            if len(jobs) == 1 or not begun:
                return [err] * len(jobs)
            log.warning("a batch of %d jobs failed (%s); writing each alone", len(jobs), type(err).__name__)
        return [self.write_batch([job])[0] for job in jobs]

    async def _drain(self, queue: _Queue[J, R]) -> None:
        batch: list[tuple[J, asyncio.Future[R]]] = []
        try:
            while queue.waiting:
                batch = self._take(queue)
                try:
                    results = await asyncio.to_thread(self.write_batch, [job for job, _ in batch])
                except Exception as err:  # noqa: BLE001 -- no thread to write in: each job fails
                    results = [err] * len(batch)
                _settle(batch, results)
        except BaseException:  # cancelled (the loop is closing): no job may wait for ever
            stopped = RuntimeError("the writer was stopped")
            _settle([*batch, *queue.waiting], itertools.repeat(stopped))
            queue.waiting.clear()
            raise
        finally:
            queue.writing = False

    def _take(self, queue: _Queue[J, R]) -> list[tuple[J, asyncio.Future[R]]]:
        weight, count = 0, 0
        for job, _ in queue.waiting:
            weight += self._size(job)
            if count and weight > self._max_size:
                break
            count += 1
        batch, queue.waiting = queue.waiting[:count], queue.waiting[count:]
        return batch


def _settle(batch: Sequence[tuple[object, asyncio.Future[R]]], results: Iterable[R | Exception]) -> None:
    """Resolve each job's future with its result: only now, after the commit, is it acknowledged."""
    for (_, done), result in zip(batch, results, strict=False):
        if done.done():  # its request went away meanwhile; the write stands (and is idempotent)
            continue
        if isinstance(result, Exception):
            done.set_exception(result)
        else:
            done.set_result(result)
