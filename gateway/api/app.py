"""The local operator API: status and metrics for anyone on the host, everything else by token and role.

Routes and the role each needs are one table (:meth:`OperatorApi.routes`). A refused request is
answered ``{"error": ...}`` with 401 (no or unknown token) or 403 (role too low, no second person) and
audited as ``auth.failed`` with the path, the role required and the user if known; tokens are never
logged nor audited. aiohttp's access log is off (its request line would carry ``?token=``); requests
are logged here with the path only.

Changes (bindings, acknowledgements, resolutions) go through :class:`~gateway.identity.Identity`, so
each is one journal transaction with its audit entry naming the user the token belongs to.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.api.auth import Role, User, UserBook
from gateway.api.config import ApiConfig
from gateway.api.events import LiveState, Subscriber
from gateway.api.http import (
    AckBody,
    ApiError,
    BindBody,
    ReasonBody,
    bearer,
    choice,
    int_query,
    path_int,
    read_body,
    reply,
    send_event,
)
from gateway.api.metrics import make_registry
from gateway.config import EquipmentConfig
from gateway.errors import GatewayError
from gateway.identity import EXCEPTION_PARAMETER, IdentityError
from gateway.journal import AuditEntry, JournalReader, Resolution
from gateway.records import ProcessRecord, utc_now

if TYPE_CHECKING:
    from gateway.runtime import RunningGateway

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATIC_DIR = Path(__file__).with_name("static")
#: Seconds between ``status`` events on the live stream.
STATUS_EVERY_S = 2.0
MAX_LIMIT = 1000
#: The user of the request being handled (each request is a task of its own), for its log line.
_calling: ContextVar[str | None] = ContextVar("api_user", default=None)
PLACEHOLDER_PAGE = (
    "<!doctype html><html><head><meta charset=utf-8><title>cgt-gateway</title></head><body>"
    "<h1>cgt-gateway</h1><p>The dashboard is not installed. The API is at <code>/api/</code>, "
    "status at <a href=/healthz>/healthz</a>, metrics at <a href=/metrics>/metrics</a>.</p></body></html>"
)


@dataclass(frozen=True, slots=True)
class Caller:
    """The user a request's token belongs to, and for a two-person change the verifier."""

    user: User
    verifier: User | None = None

    @property
    def second(self) -> User:
        assert self.verifier is not None, "the route needs a verifier"
        return self.verifier


Endpoint = Callable[[web.Request, "Caller | None"], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Endpoint
    #: None: open to anyone who reaches the port (health, metrics, the page itself).
    role: Role | None
    #: The change needs a second person: an operator's token in ``X-Verifier-Token``.
    verifier: bool = False
    #: EventSource cannot send headers: this route also takes ``?token=``.
    token_in_query: bool = False


class OperatorApi:
    """The API of one running gateway: :meth:`start` before the devices, :meth:`stop` before the journal closes."""

    def __init__(
        self, running: RunningGateway, config: ApiConfig, gateway_id: str, equipment: list[EquipmentConfig]
    ) -> None:
        self.running = running
        self.config = config
        self.gateway_id = gateway_id
        self.equipment = equipment
        self.users = UserBook(config.users_file)
        self.live = LiveState(running.journal)
        self.registry, self._refused = make_registry(running, self.live)
        self.resolutions: dict[int, Resolution] = {}
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._follow: asyncio.Task[None] | None = None
        self._streams: set[Subscriber] = set()

    @property
    def url(self) -> str:
        host = self.config.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def routes(self) -> list[Route]:
        viewer, operator, qa = Role.VIEWER, Role.OPERATOR, Role.QA
        return [
            Route("GET", "/healthz", self.healthz, None),
            Route("GET", "/metrics", self.metrics, None),
            Route("GET", "/", self.index, None),
            Route("GET", "/static/{name:.+}", self.static, None),
            Route("GET", "/api/me", self.me, viewer),
            Route("GET", "/api/equipment", self.equipment_list, viewer),
            Route("GET", "/api/records", self.records, viewer),
            Route("GET", "/api/alarms", self.alarms, viewer),
            Route("POST", "/api/alarms/{seq}/acknowledge", self.acknowledge, operator),
            Route("GET", "/api/bindings", self.bindings, viewer),
            Route("POST", "/api/bindings", self.bind, operator, verifier=True),
            Route("POST", "/api/bindings/{equipment_id}/end", self.unbind, operator, verifier=True),
            Route("GET", "/api/exceptions", self.exceptions, viewer),
            Route("POST", "/api/exceptions/{seq}/resolve", self.resolve, qa),
            Route("GET", "/api/audit", self.audit, qa),
            Route("GET", "/api/sinks", self.sinks, viewer),
            Route("GET", "/api/stream", self.stream, viewer, token_in_query=True),
        ]

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors])
        for route in self.routes():
            app.router.add_route(route.method, route.path, self._guard(route))
        app.on_shutdown.append(self._end_streams)
        return app

    async def start(self) -> None:
        await self.live.load()
        self.resolutions = await asyncio.to_thread(self._read, lambda r: r.resolutions())
        self._follow = asyncio.create_task(self.live.follow(), name="api:follow")
        self._follow.add_done_callback(_report_follow_end)
        self._runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=3.0)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.config.host, self.config.port).start()
        except OSError as exc:
            await self.stop()
            raise GatewayError(f"api: cannot listen on {self.config.listen}: {exc.strerror or exc}") from None
        self.port = int(self._runner.addresses[0][1])
        log.info("operator API listening", url=self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._follow is not None:
            self._follow.cancel()
            await asyncio.gather(self._follow, return_exceptions=True)
            self._follow = None
        await self.live.close()

    # -- auth -------------------------------------------------------------------------------------

    def _guard(self, route: Route) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            caller = None if route.role is None else await self._caller(request, route, route.role)
            return await route.handler(request, caller)

        return guarded

    async def _caller(self, request: web.Request, route: Route, required: Role) -> Caller:
        """Who calls, or a refusal. Its own frame, so no token is a local of any frame a traceback shows."""
        token = bearer(request) or (request.query.get("token") if route.token_in_query else None)
        user, given = self.users.authenticate(token), bool(token)
        del token  # a traceback rendered with its locals must not show it
        if user is None:
            why = "unknown token" if given else "no token: send Authorization: Bearer <token>"
            await self._refuse(request, 401, why, required, None, "unknown_token" if given else "missing_token")
        if not user.may(required):
            await self._refuse(request, 403, f"{user.name} is {user.role.label}; this needs {required.label} "
                               "or above", required, user, "role")
        _calling.set(user.name)
        verifier = await self._verifier(request, user) if route.verifier else None
        return Caller(user, verifier)

    async def _verifier(self, request: web.Request, user: User) -> User:
        token = request.headers.get("X-Verifier-Token")
        verifier, given = self.users.authenticate(token), bool(token)
        del token
        required = Role.OPERATOR
        if verifier is None:
            why = ("unknown verifier token" if given
                   else "this change needs a second person: their token in X-Verifier-Token")
            await self._refuse(request, 401, why, required, user, "verifier")
        if verifier.name == user.name:
            await self._refuse(request, 403, f"{user.name} cannot verify their own change: a second person must",
                               required, user, "same_person")
        if not verifier.may(required):
            await self._refuse(request, 403, f"verifier {verifier.name} is {verifier.role.label}; verifying needs "
                               "operator or above", required, user, "verifier_role")
        return verifier

    async def _refuse(
        self, request: web.Request, status: int, why: str, required: Role, user: User | None, reason: str
    ) -> NoReturn:
        """Audit the refusal (never the token), count it, and answer it."""
        detail = {"path": request.path, "method": request.method, "required_role": required.label,
                  "user": user.name if user else None, "remote": request.remote, "status": status}
        await self.running.journal.audit(AuditEntry(
            "auth.failed", f"{request.method} {request.path}", why, detail, user.name if user else "unknown",
        ))
        self._refused.labels(reason).inc()
        log.warning("API request refused", path=request.path, status=status, user=detail["user"], reason=why)
        raise ApiError(status, why)

    # -- open routes ------------------------------------------------------------------------------

    async def healthz(self, request: web.Request, caller: Caller | None) -> web.Response:
        states = [s.health.state for s in self.running.supervisors]
        down = states.count("down")
        return reply({
            "status": "ok" if down == 0 else "degraded",
            "gateway_id": self.gateway_id,
            "last_seq": self.running.journal.last_seq,
            "devices": {"up": states.count("up"), "down": down, "starting": states.count("starting")},
            "time": utc_now(),
        })

    async def metrics(self, request: web.Request, caller: Caller | None) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def index(self, request: web.Request, caller: Caller | None) -> web.StreamResponse:
        page = STATIC_DIR / "index.html"
        if page.is_file():
            return web.FileResponse(page, headers={"Cache-Control": "no-cache"})
        return web.Response(text=PLACEHOLDER_PAGE, content_type="text/html")

    async def static(self, request: web.Request, caller: Caller | None) -> web.StreamResponse:
        root = STATIC_DIR.resolve()
        path = (root / request.match_info["name"]).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    # -- reads ------------------------------------------------------------------------------------

    async def me(self, request: web.Request, caller: Caller | None) -> web.Response:
        user = _who(caller)
        return reply({"name": user.name, "role": user.role.label})

    async def equipment_list(self, request: web.Request, caller: Caller | None) -> web.Response:
        now = utc_now()
        health = {s.equipment.id: s.health for s in self.running.supervisors}
        out = []
        for eq in self.equipment:
            h = health.get(eq.id)
            binding = self.running.identity.book.active(eq.id, now)
            values = sorted(self.live.last_values.get(eq.id, {}).values(), key=lambda s: s["parameter"])
            out.append({
                "id": eq.id, "class": eq.equipment_class, "kind": eq.kind,
                "isa95": eq.isa95.model_dump() if eq.isa95 else None,
                "state": h.state if h else "disabled", "since": h.since if h else None,
                "last_error": h.last_error if h else None,
                "binding": binding.model_dump(mode="json") if binding else None,
                "last_values": [_last_value(s, now) for s in values],
            })
        return reply(out)

    async def records(self, request: web.Request, caller: Caller | None) -> web.Response:
        equipment = request.query.get("equipment") or None
        parameter = request.query.get("parameter") or None
        since = int_query(request, "since_seq", 0, minimum=0)
        limit = int_query(request, "limit", 100, minimum=1, maximum=MAX_LIMIT)

        def query(reader: JournalReader) -> list[dict[str, Any]]:
            if parameter is None:
                found: Iterator[ProcessRecord] = reader.read(since, limit, equipment)
            else:
                found = reader.of_parameter(parameter, since, equipment)
            return [r.model_dump(mode="json") for r in islice(found, limit)]

        return reply(await asyncio.to_thread(self._read, query))

    async def alarms(self, request: web.Request, caller: Caller | None) -> web.Response:
        state = choice(request, "state", ("active", "all"))
        out = []
        for alarm in reversed(self.live.alarms):
            active = self.live.is_active(alarm)
            if state == "active" and not active:
                continue
            ack = self.resolutions.get(alarm["seq"])
            out.append({k: alarm[k] for k in ("seq", "equipment_id", "parameter", "value", "detail", "source_time",
                                              "gateway_time", "lot_id")}
                       | {"active": active, "acknowledged": _closed(ack)})
        return reply(out)

    async def bindings(self, request: web.Request, caller: Caller | None) -> web.Response:
        return reply([b.model_dump(mode="json") | {"active": b.valid_to is None}
                      for b in self.running.identity.book.all()])

    async def exceptions(self, request: web.Request, caller: Caller | None) -> web.Response:
        state = choice(request, "state", ("open", "all"))

        def query(reader: JournalReader) -> tuple[list[ProcessRecord], dict[int, Resolution]]:
            return list(reader.events_of(EXCEPTION_PARAMETER)), reader.resolutions()

        found, closed = await asyncio.to_thread(self._read, query)
        out = []
        for r in reversed(found):
            resolved = closed.get(r.seq)
            if state == "open" and resolved is not None:
                continue
            out.append({"seq": r.seq, "equipment_id": r.equipment_id, "value": r.value, "lot_id": r.lot_id,
                        "detail": r.detail, "source_time": r.source_time, "gateway_time": r.gateway_time,
                        "open": resolved is None, "resolved": _closed(resolved)})
        return reply(out)

    async def audit(self, request: web.Request, caller: Caller | None) -> web.Response:
        since = int_query(request, "since_id", 0, minimum=0)
        limit = int_query(request, "limit", 100, minimum=1, maximum=MAX_LIMIT)
        return reply(await asyncio.to_thread(self._read, lambda r: r.audit(since, limit)))

    async def sinks(self, request: web.Request, caller: Caller | None) -> web.Response:
        return reply([f.snapshot().as_dict() for f in self.running.forwarders])

    # -- changes ----------------------------------------------------------------------------------

    async def acknowledge(self, request: web.Request, caller: Caller | None) -> web.Response:
        seq = path_int(request, "seq")
        body = await read_body(request, AckBody)
        await self._closing_change(self.running.identity.acknowledge_alarm(
            seq, actor=_who(caller).name, comment=body.comment))
        return reply({"ok": True})

    async def resolve(self, request: web.Request, caller: Caller | None) -> web.Response:
        seq = path_int(request, "seq")
        body = await read_body(request, ReasonBody)
        await self._closing_change(self.running.identity.resolve_exception(
            seq, actor=_who(caller).name, reason=body.reason))
        return reply({"ok": True})

    async def bind(self, request: web.Request, caller: Caller | None) -> web.Response:
        body = await read_body(request, BindBody)
        try:
            binding = await self.running.identity.bind(
                body.equipment_id, body.lot_id, performed_by=_who(caller).name,
                verified_by=_who(caller, verifier=True).name, reason=body.reason, coi_id=body.coi_id, dins=body.dins,
                process_step=body.process_step,
            )
        except IdentityError as exc:
            raise ApiError(400, str(exc)) from None
        return reply({"ok": True, "binding": binding.model_dump(mode="json")})

    async def unbind(self, request: web.Request, caller: Caller | None) -> web.Response:
        body = await read_body(request, ReasonBody)
        try:
            binding = await self.running.identity.unbind(
                request.match_info["equipment_id"], performed_by=_who(caller).name,
                verified_by=_who(caller, verifier=True).name, reason=body.reason,
            )
        except IdentityError as exc:
            raise ApiError(400, str(exc)) from None
        return reply({"ok": True, "binding": binding.model_dump(mode="json")})

    async def _closing_change(self, change: Awaitable[None]) -> None:
        """An acknowledgement or resolution: 404 no such record, 409 already closed, 400 anything else."""
        try:
            await change
        except IdentityError as exc:
            message = str(exc)
            status = 404 if message.startswith("no record") else 409 if "already closed" in message else 400
            raise ApiError(status, message) from None
        self.resolutions = await asyncio.to_thread(self._read, lambda r: r.resolutions())

    # -- the live stream --------------------------------------------------------------------------

    async def stream(self, request: web.Request, caller: Caller | None) -> web.StreamResponse:
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
        })
        await response.prepare(request)
        sub = self.live.subscribe()
        self._streams.add(sub)
        loop = asyncio.get_running_loop()
        try:
            await send_event(response, "status", self._status())
            next_status = loop.time() + STATUS_EVERY_S
            while not sub.overflowed:
                try:
                    async with asyncio.timeout(max(0.0, next_status - loop.time())):
                        batch = await sub.queue.get()
                except TimeoutError:
                    await send_event(response, "status", self._status())
                    next_status = loop.time() + STATUS_EVERY_S
                    continue
                if batch:
                    await send_event(response, "records", [{k: s[k] for k in _STREAM_FIELDS} for s in batch])
        except ConnectionError:
            pass  # the client went away; nothing to tell it
        finally:
            self.live.unsubscribe(sub)
            self._streams.discard(sub)
        return response

    def _status(self) -> dict[str, Any]:
        return {
            "time": utc_now(),
            "last_seq": self.running.journal.last_seq,
            "devices": [{"id": s.equipment.id, "state": s.health.state, "since": s.health.since,
                         "last_error": s.health.last_error} for s in self.running.supervisors],
            "sinks": [f.snapshot().as_dict() for f in self.running.forwarders],
        }

    async def _end_streams(self, app: web.Application) -> None:
        """At shutdown, end every live stream now instead of waiting out the shutdown timeout."""
        for sub in list(self._streams):
            sub.overflowed = True
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait([])

    # -- plumbing ---------------------------------------------------------------------------------

    def _read(self, query: Callable[[JournalReader], Any]) -> Any:
        """Run ``query`` with a reader of its own (called in a thread: SQLite never blocks the loop)."""
        with JournalReader(self.running.journal.path) as reader:
            return query(reader)

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """JSON errors under /api/, and one log line per request with its path only (no query, no headers)."""
        started = time.perf_counter()
        try:
            response = await handler(request)
        except ApiError as exc:
            response = reply({"error": exc.message}, status=exc.status)
        except web.HTTPException as exc:
            if not request.path.startswith("/api/"):
                raise
            response = reply({"error": exc.reason}, status=exc.status)
        except Exception as exc:
            log.error("API request failed", method=request.method, path=request.path, exc_info=exc)
            response = reply({"error": "internal error; the gateway log has the details"}, status=500)
        log.debug("API request", method=request.method, path=request.path, status=response.status,
                  user=_calling.get(), ms=round((time.perf_counter() - started) * 1000, 1))
        return response


_STREAM_FIELDS = ("seq", "equipment_id", "parameter", "value", "unit", "quality", "kind", "source_time")
_VALUE_FIELDS = ("parameter", "value", "unit", "quality", "kind", "source_time", "gateway_time", "seq")


def _who(caller: Caller | None, *, verifier: bool = False) -> User:
    assert caller is not None, "an open route has no caller"
    return caller.second if verifier else caller.user


def _last_value(s: dict[str, Any], now: datetime) -> dict[str, Any]:
    age = (now - datetime.fromisoformat(s["gateway_time"])).total_seconds()
    return {k: s[k] for k in _VALUE_FIELDS} | {"age_s": round(max(age, 0.0), 3)}


def _closed(resolution: Resolution | None) -> dict[str, str] | None:
    return None if resolution is None else {"actor": resolution.actor, "time": resolution.time,
                                            "reason": resolution.reason}


def _report_follow_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the API stopped following the journal; live values and the stream are stale",
                  exc_info=task.exception())
