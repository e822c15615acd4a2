"""A real HTTP server standing in for the MES: it takes the gateway's batches the way an MES should.

It implements the wire contract of the HTTP sink (``gateway/sinks/http/README.md``): checks the bearer
token, the body and each record's hash, keeps one copy per ``(gateway_id, seq)`` and answers
``duplicate`` for the others, and says per record what it did. What it received stays on the object for
assertions; faults are injected by method or by ``POST /_control`` from another process.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import structlog
from aiohttp import web

from device_sims.lifecycle import Simulator
from gateway.errors import SimulatorError

log = structlog.get_logger(__name__)

_NOT_HASHED = ("hash", "delivery")
_HEX64 = frozenset("0123456789abcdef")


@dataclass(slots=True)
class _Rejection:
    seqs: frozenset[int] | None
    parameters: frozenset[str] | None
    reason: str

    def matches(self, record: dict[str, Any]) -> bool:
        if self.seqs is not None and record.get("seq") not in self.seqs:
            return False
        return self.parameters is None or record.get("parameter") in self.parameters


@dataclass(slots=True)
class _Faults:
    fail_status: int | None = None
    #: Requests left to fail; None = until clear().
    fail_left: int | None = None
    hang_s: float = 0.0
    rejections: list[_Rejection] = field(default_factory=list)


class BadBatch(ValueError):
    """The body breaks the wire contract: answered 400 with the reason and no per-record results."""


class MesStandIn(Simulator):
    """``async with MesStandIn() as mes: mes.endpoint`` — an MES records endpoint on 127.0.0.1:<free port>.

    ``token`` requires ``Authorization: Bearer <token>``; ``ssl`` serves https (give a server context, with
    ``verify_mode = CERT_REQUIRED`` for mutual TLS); ``jsonl_path`` appends every first-received record as
    one JSON line; ``verify_hashes`` checks each record's hash as an MES receiving GMP data should.
    A ``jsonl_path`` that already holds records is the stand-in's memory: a restarted stand-in answers
    ``duplicate`` for every record it took before, as an MES with a database would.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        path: str = "/records",
        *,
        ssl: ssl.SSLContext | None = None,
        jsonl_path: str | Path | None = None,
        verify_hashes: bool = True,
        max_body_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if not path.startswith("/") or path.startswith("/_control"):
            raise ValueError(f"path must start with / and not be /_control, not {path!r}")
        self._host = host
        self._port = port
        self._token = token
        self._path = path
        self._ssl = ssl
        self._jsonl_path = Path(jsonl_path) if jsonl_path is not None else None
        self._verify_hashes = verify_hashes
        self._max_body_bytes = max_body_bytes
        self._runner: web.AppRunner | None = None
        self._faults = _Faults()
        self._unhang = asyncio.Event()
        self._up_task: asyncio.Task[None] | None = None
        self._store: dict[tuple[str, int], dict[str, Any]] = self._remembered()
        #: Total record copies received in well-formed, authorised batches (first copies and duplicates).
        self.received = 0
        #: Record copies answered ``duplicate``.
        self.duplicates = 0
        #: Requests to the records path, whatever the answer (faults and 401s included).
        self.requests = 0
        #: The Idempotency-Key of every request to the records path, in arrival order.
        self.idempotency_keys: list[str] = []

    def _remembered(self) -> dict[tuple[str, int], dict[str, Any]]:
        """The records an earlier run appended to ``jsonl_path`` (a torn last line, from a kill, is skipped)."""
        if self._jsonl_path is None or not self._jsonl_path.exists():
            return {}
        data = self._jsonl_path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self._jsonl_path.open("ab") as out:  # what follows starts on a line of its own
                out.write(b"\n")
        store: dict[tuple[str, int], dict[str, Any]] = {}
        for line in data.splitlines():
            try:
                record = orjson.loads(line)
                store.setdefault((record["gateway_id"], record["seq"]), record)
            except (orjson.JSONDecodeError, KeyError, TypeError):
                text = line[:80].decode(errors="replace")
                log.warning("mes_standin_unreadable_line", path=str(self._jsonl_path), line=text)
        return store

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the endpoint; SimulatorError naming the address when it cannot be bound."""
        if self._runner is not None:
            raise RuntimeError("the MES stand-in is already running")
        await self._open()
        log.info("mes_standin_listening", endpoint=self.endpoint)

    async def stop(self) -> None:
        """Release hanging answers, stop listening and drop open connections. Idempotent."""
        self._unhang.set()
        await self._cancel_timer()
        await self._shut()

    async def _cancel_timer(self) -> None:
        """Cancel a scheduled go-down/come-up, unless it is the caller itself."""
        task, self._up_task = self._up_task, None
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _open(self) -> None:
        app = web.Application(client_max_size=self._max_body_bytes)
        app.router.add_post(self._path, self._handle_records)
        app.router.add_post("/_control", self._handle_control)
        app.router.add_get("/_state", self._handle_state)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port, ssl_context=self._ssl)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise SimulatorError(f"MES stand-in cannot listen on {self._host}:{self._port}: {exc.strerror}") from exc
        self._runner = runner
        self._port = runner.addresses[0][1]

    async def _shut(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # -- where ---------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The bound port (the real one after start when 0 was asked for)."""
        return self._port

    @property
    def endpoint(self) -> str:
        """The full URL of the records path, e.g. ``http://127.0.0.1:41234/records``."""
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://{self._host}:{self._port}{self._path}"

    @property
    def serial_path(self) -> None:
        """Not a serial device (simulators share this attribute)."""
        return None

    @property
    def is_up(self) -> bool:
        return self._runner is not None

    # -- what it holds -------------------------------------------------------------------------
    def records(self, gateway_id: str | None = None) -> list[dict[str, Any]]:
        """Stored records (one per key) in the order they were first received, as they came."""
        return [r for (gw, _), r in self._store.items() if gateway_id is None or gw == gateway_id]

    def sequences(self, gateway_id: str) -> list[int]:
        """The seqs stored for one gateway in order of first receipt: ``[1, 2, …, n]`` when nothing was lost."""
        return [seq for gw, seq in self._store if gw == gateway_id]

    def state(self) -> dict[str, Any]:
        """Counters and faults as plain data (also served as ``GET /_state``)."""
        faults = self._faults
        return {
            "endpoint": self.endpoint,
            "up": self.is_up,
            "stored": len(self._store),
            "received": self.received,
            "duplicates": self.duplicates,
            "requests": self.requests,
            "gateways": sorted({gw for gw, _ in self._store}),
            "faults": {
                "fail_status": faults.fail_status,
                "fail_left": faults.fail_left,
                "hang_s": faults.hang_s,
                "rejections": len(faults.rejections),
            },
        }

    # -- faults --------------------------------------------------------------------------------
    def fail(self, status: int = 503, count: int | None = None) -> None:
        """Answer ``status`` to the next ``count`` record requests (all of them until clear() when None)."""
        if not 400 <= status <= 599:
            raise ValueError(f"fail status must be 4xx or 5xx, not {status}")
        if count is not None and count < 1:
            raise ValueError(f"count must be at least 1 or None, not {count}")
        self._faults.fail_status, self._faults.fail_left = status, count

    def hang(self, seconds: float) -> None:
        """Hold every answer ``seconds`` before processing it (the batch is still taken afterwards)."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, not {seconds}")
        self._faults.hang_s = seconds
        self._unhang = asyncio.Event()

    def reject(
        self,
        seqs: Iterable[int] | None = None,
        parameters: Iterable[str] | None = None,
        reason: str = "rejected by the MES stand-in",
    ) -> None:
        """Answer ``rejected`` with ``reason`` for records matching every given filter; the rest are taken."""
        if seqs is None and parameters is None:
            raise ValueError("reject needs seqs or parameters")
        self._faults.rejections.append(
            _Rejection(
                frozenset(seqs) if seqs is not None else None,
                frozenset(parameters) if parameters is not None else None,
                reason,
            )
        )

    async def go_down(self, for_s: float | None = None) -> None:
        """Close the listening socket and open connections (clients get connection refused).

        With ``for_s`` the endpoint comes back by itself after that many seconds.
        """
        await self._cancel_timer()
        self._unhang.set()
        await self._shut()
        log.info("mes_standin_down", port=self._port, for_s=for_s)
        if for_s is not None:
            self._up_task = asyncio.create_task(self._come_up_after(for_s), name="mes-standin-come-up")

    async def come_up(self) -> None:
        """Listen again on the same port. No-op when already up."""
        await self._cancel_timer()
        if self._runner is None:
            self._unhang = asyncio.Event()
            await self._open()
            log.info("mes_standin_up", endpoint=self.endpoint)

    def clear(self) -> None:
        """Lift every fault (fail, hang, reject); stored records and counters stay."""
        self._faults = _Faults()
        self._unhang.set()
        self._unhang = asyncio.Event()

    async def _come_up_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.come_up()

    # -- HTTP ----------------------------------------------------------------------------------
    async def _handle_records(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.idempotency_keys.append(request.headers.get("Idempotency-Key", ""))
        faults = self._faults
        if faults.hang_s > 0:
            unhang = self._unhang
            try:
                await asyncio.wait_for(unhang.wait(), faults.hang_s)
            except TimeoutError:
                pass
        if faults.fail_status is not None:
            status = faults.fail_status
            if faults.fail_left is not None:
                faults.fail_left -= 1
                if faults.fail_left <= 0:
                    faults.fail_status = faults.fail_left = None
            return _error(status, f"injected fault: {status}")
        if self._token is not None and not _token_ok(request.headers.get("Authorization", ""), self._token):
            return web.json_response(
                {"error": "missing or wrong bearer token"}, status=401, headers={"WWW-Authenticate": "Bearer"}
            )
        if not request.headers.get("Idempotency-Key"):
            return _error(400, "the Idempotency-Key header is required")
        try:
            body = orjson.loads(await request.read())
            records = self._check_batch(body)
        except orjson.JSONDecodeError as exc:
            return _error(400, f"the body is not JSON: {exc}")
        except BadBatch as exc:
            return _error(400, str(exc))
        return web.json_response({"results": self._take(body["gateway_id"], records)}, dumps=_dumps)

    def _check_batch(self, body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, dict):
            raise BadBatch("the body must be a JSON object")
        missing = [k for k in ("gateway_id", "first_seq", "last_seq", "attempt", "sent_at", "records") if k not in body]
        if missing:
            raise BadBatch(f"the body lacks {', '.join(missing)}")
        gateway_id, records = body["gateway_id"], body["records"]
        if not isinstance(gateway_id, str) or not gateway_id:
            raise BadBatch("gateway_id must be a non-empty string")
        if not isinstance(records, list) or not records:
            raise BadBatch("records must be a non-empty list")
        previous = 0
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise BadBatch(f"records[{index}] is not an object")
            seq = record.get("seq")
            if type(seq) is not int or seq <= previous:
                raise BadBatch(f"records[{index}]: seq {seq!r} is not an integer above the one before")
            previous = seq
            if record.get("gateway_id") != gateway_id:
                raise BadBatch(f"seq {seq}: gateway_id {record.get('gateway_id')!r} is not the batch's {gateway_id!r}")
            digest = record.get("hash")
            if not isinstance(digest, str) or len(digest) != 64 or not set(digest) <= _HEX64:
                raise BadBatch(f"seq {seq}: hash is not 64 lower-case hex digits")
            if self._verify_hashes and _content_hash(record) != digest:
                raise BadBatch(f"seq {seq}: the record does not match its hash (changed in transit?)")
        if body["first_seq"] != records[0]["seq"] or body["last_seq"] != records[-1]["seq"]:
            raise BadBatch("first_seq / last_seq do not match the records")
        return records

    def _take(self, gateway_id: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        fresh: list[dict[str, Any]] = []
        for record in records:
            seq = record["seq"]
            rule = next((r for r in self._faults.rejections if r.matches(record)), None)
            if rule is not None:
                results.append({"seq": seq, "status": "rejected", "reason": rule.reason})
                continue
            self.received += 1
            key = (gateway_id, seq)
            if key in self._store:
                self.duplicates += 1
                results.append({"seq": seq, "status": "duplicate"})
            else:
                self._store[key] = record
                fresh.append(record)
                results.append({"seq": seq, "status": "accepted"})
        if fresh and self._jsonl_path is not None:
            with self._jsonl_path.open("ab") as out:  # a few KB per batch: not worth a thread for a stand-in
                out.write(b"".join(orjson.dumps(r) + b"\n" for r in fresh))
        return results

    async def _handle_control(self, request: web.Request) -> web.Response:
        """``{"action": "fail", "status": 503, "count": 2}`` and the like; answers the new state."""
        try:
            command = orjson.loads(await request.read())
            if not isinstance(command, dict) or not isinstance(command.get("action"), str):
                raise ValueError('send a JSON object with "action"')
            action = command.pop("action")
            if action == "fail":
                self.fail(**command)
            elif action == "hang":
                self.hang(**command)
            elif action == "reject":
                self.reject(**command)
            elif action == "clear":
                self.clear(**command)
            elif action == "go_down":
                if not isinstance(command.get("for_s"), int | float):
                    raise ValueError("go_down over HTTP needs for_s (nothing could bring it up again)")
                asyncio.get_running_loop().call_soon(self._go_down_later, float(command["for_s"]))
            else:
                raise ValueError(f"unknown action {action!r}: fail, hang, reject, go_down or clear")
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            return _error(400, str(exc))
        return web.json_response(self.state())

    def _go_down_later(self, for_s: float) -> None:
        """Go down after the control answer has left (a handler cannot close its own server)."""
        if self._up_task is None or self._up_task.done():
            self._up_task = asyncio.create_task(self._down_then_up(for_s), name="mes-standin-go-down")

    async def _down_then_up(self, for_s: float) -> None:
        self._unhang.set()
        await self._shut()
        log.info("mes_standin_down", port=self._port, for_s=for_s)
        await asyncio.sleep(for_s)
        await self.come_up()

    async def _handle_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())


def _content_hash(record: dict[str, Any]) -> str:
    """What the gateway hashed: every member but hash and delivery, keys sorted, compact JSON."""
    body = {k: v for k, v in record.items() if k not in _NOT_HASHED}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _token_ok(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
