"""A fault-injecting HTTP proxy on 127.0.0.1, in front of a real OpenAI-compatible server.

Hand-written because it must misbehave on purpose (drop connections, answer late, send
Retry-After) on a fixed schedule, which no maintained proxy does deterministically.

Schedule: the i-th *distinct* request body to arrive gets ``schedule[i % len(schedule)]`` on its
first attempt, and is forwarded on every later attempt, so each request needs at most two
attempts whatever the interleaving of concurrent requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FAULTS = ("ok", "429", "500", "503", "drop", "slow")


@dataclass
class ProxyLog:
    injected: Counter = field(default_factory=Counter)
    forwarded: Counter = field(default_factory=Counter)  # body hash -> times forwarded upstream
    attempts: Counter = field(default_factory=Counter)  # body hash -> attempts seen
    times: dict = field(default_factory=dict)  # body hash -> arrival times
    order: list = field(default_factory=list)  # distinct bodies in arrival order
    fault_of: dict = field(default_factory=dict)  # body hash -> fault injected on its first attempt


class FaultProxy:
    def __init__(self, upstream_port: int, schedule: tuple[str, ...], *, slow_s: float, retry_after_s: int = 1) -> None:
        assert all(s in FAULTS for s in schedule)
        self.upstream_port = upstream_port
        self.schedule = schedule
        self.slow_s = slow_s
        self.retry_after_s = retry_after_s
        self.log = ProxyLog()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    # --- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        assert self._ready.wait(10), "proxy did not start"
        return self

    def __exit__(self, *exc) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        self._server.close()
        await self._server.wait_closed()

    # --- one connection = one request (every answer says Connection: close) --------------------
    async def _read_request(self, reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            return None
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        body = await reader.readexactly(length) if length else b""
        return head, body

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            req = await self._read_request(reader)
            if req is None:
                return
            head, body = req
            key = hashlib.sha256(head.split(b"\r\n", 1)[0] + body).hexdigest()
            log = self.log
            if key not in log.attempts:
                log.order.append(key)
            first = log.attempts[key] == 0
            log.attempts[key] += 1
            log.times.setdefault(key, []).append(time.monotonic())
            fault = self.schedule[(len(log.order) - 1) % len(self.schedule)] if first else "ok"
            if fault != "ok":
                log.injected[fault] += 1
                log.fault_of[key] = fault
            await self._act(fault, key, head, body, writer)
        finally:
            try:
                writer.close()
                await asyncio.wait_for(writer.wait_closed(), 5)
            except (ConnectionError, asyncio.TimeoutError, OSError):
                pass

    async def _act(self, fault: str, key: str, head: bytes, body: bytes, writer: asyncio.StreamWriter) -> None:
        if fault == "drop":
            writer.transport.abort()
            return
        if fault == "slow":
            await asyncio.sleep(self.slow_s)  # longer than the client's time-out: it gives up first
            return
        if fault in ("429", "500", "503"):
            extra = f"Retry-After: {self.retry_after_s}\r\n" if fault == "429" else ""
            msg = b'{"error": {"message": "injected fault"}}'
            writer.write(f"HTTP/1.1 {fault} Injected\r\nContent-Type: application/json\r\n{extra}"
                         f"Content-Length: {len(msg)}\r\nConnection: close\r\n\r\n".encode() + msg)
            await writer.drain()
            return
        self.log.forwarded[key] += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            lines = [ln for ln in head.rstrip(b"\r\n").split(b"\r\n") if not ln.lower().startswith(b"connection:")]
            up_writer.write(b"\r\n".join(lines) + b"\r\nConnection: close\r\n\r\n" + body)
            await up_writer.drain()
            while chunk := await asyncio.wait_for(up_reader.read(65536), 300):
                writer.write(chunk)
            await writer.drain()
        finally:
            up_writer.close()
