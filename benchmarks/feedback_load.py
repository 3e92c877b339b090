"""Load generators for `feedback_ingest.py`: concurrent clients posting feedback back to back.

Two clients, to separate the server's cost from the client's. `httpx` is what integrators use
(httpx.AsyncClient, one pooled keep-alive connection per concurrent client). `raw` writes the same
HTTP/1.1 requests on keep-alive sockets with asyncio streams and reads only the status line, the
headers and the body length: on a 2-core machine the load generator shares the cores with the server,
and httpx costs a few milliseconds of CPU per request, which would otherwise be measured as the
server's.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

Post = Callable[[bytes], Awaitable[str]]  # sends one body, returns the status (or an error name)
Probe = Callable[[], float]  # CPU seconds the server has used so far


@dataclass
class Run:
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, measured requests only
    statuses: Counter[str] = field(default_factory=Counter)
    client_cpu: float = 0.0  # CPU seconds the load generator used over the whole run
    server_cpu: float = float("nan")  # CPU seconds the server used in the measured window
    all_statuses: Counter[str] = field(default_factory=Counter)  # warm-up included


async def _drive(
    posts: list[Post], bodies: Iterator[bytes], warmup: float, seconds: float, probe: Probe | None
) -> Run:
    """Each `post` loops until the end; latencies count after the warm-up only."""
    run, loop = Run(seconds), asyncio.get_running_loop()
    measure_from = loop.time() + warmup
    stop = measure_from + seconds

    async def sample_server() -> None:
        if probe is not None:
            await asyncio.sleep(warmup)
            before = probe()
            await asyncio.sleep(seconds)
            run.server_cpu = probe() - before

    async def client(post: Post) -> None:
        # perf_counter for latencies: uvloop's loop.time() ticks in whole milliseconds.
        while loop.time() < stop:
            started, window = time.perf_counter(), loop.time()
            status = await post(next(bodies))
            run.all_statuses[status] += 1
            if window >= measure_from and loop.time() <= stop:
                run.latencies.append(time.perf_counter() - started)
                run.statuses[status] += 1

    cpu = time.process_time()
    await asyncio.gather(sample_server(), *(client(post) for post in posts))
    run.client_cpu = time.process_time() - cpu
    return run


async def httpx_load(
    base: str,
    path: str,
    token: str,
    bodies: Iterator[bytes],
    concurrency: int,
    warmup: float,
    seconds: float,
    probe: Probe | None = None,
) -> Run:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

        async def post(body: bytes) -> str:
            try:
                return str((await http.post(path, content=body, headers=headers)).status_code)
            except httpx.HTTPError as err:
                return type(err).__name__

        return await _drive([post] * concurrency, bodies, warmup, seconds, probe)


class _Connection:
    """One keep-alive HTTP/1.1 connection that sends pre-built requests."""

    def __init__(self, host: str, port: int, head: bytes) -> None:
        self.host, self.port, self.head = host, port, head
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> str:
        try:
            if self.reader is None or self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.writer.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
            status = (await self.reader.readline()).split(b" ", 2)[1].decode()
            length, close = 0, False
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                length = int(value) if name.lower() == b"content-length" else length
                close = close or (name.lower() == b"connection" and value.strip().lower() == b"close")
            await self.reader.readexactly(length)
        except (OSError, IndexError, ValueError, asyncio.IncompleteReadError) as err:
            status, close = type(err).__name__, True
        if close and self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None
        return status


async def raw_load(
    base: str,
    path: str,
    token: str,
    bodies: Iterator[bytes],
    concurrency: int,
    warmup: float,
    seconds: float,
    probe: Probe | None = None,
) -> Run:
    url = urlsplit(base)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    connections = [_Connection(url.hostname or "127.0.0.1", url.port or 80, head) for _ in range(concurrency)]
    run = await _drive([c.post for c in connections], bodies, warmup, seconds, probe)
    for c in connections:
        if c.writer is not None:
            c.writer.close()
    return run


CLIENTS = {"httpx": httpx_load, "raw": raw_load}
