"""One case's rig: its simulators, its gateway and its journal, what it observes of them, and which
family of steps carries out each step of the case's timeline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gateway.errors import ConfigError
from gateway.journal import JournalReader
from gateway.plugins import sim_factories
from gateway.qualify.oq.steps import sims as sim_steps
from gateway.qualify.oq.steps.cli_api import call_api, run_cli
from gateway.qualify.oq.steps.errors import StepFailed, StepRefused
from gateway.qualify.oq.steps.gateway import GatewayControl, Usage
from gateway.qualify.oq.steps.mes import bind_lot, mes_action
from gateway.qualify.oq.steps.site import client_certificate, edit_site, expired_client_certificate, resolve_site
from gateway.qualify.oq.timeline import Condition, Step
from gateway.runtime import RunningGateway, declared_simulators

POLL_S = 0.05


@dataclass
class Sample:
    """One point of the delivery timeline: seconds since the case started, committed, delivered."""

    t: float
    committed: int
    delivered: int
    mes_up: bool | None


@dataclass
class Rig(GatewayControl):
    """Simulators + gateway + journal of one case."""

    site_file: Path
    work_dir: Path
    mode: str
    #: Client certificates to make in the case's folder before the site is resolved (``${pki.NAME.cert}``).
    pki_clients: list[str] = field(default_factory=list)
    #: The same, but expired a day before the case (``pki: {expired_clients: [...]}``).
    pki_expired: list[str] = field(default_factory=list)
    sims: dict[str, Any] = field(default_factory=dict)
    gateway_id: str = ""
    journal_path: Path = Path()
    resolved: Path = Path()
    started_at: float = field(default_factory=time.monotonic)
    timeline: list[Sample] = field(default_factory=list)
    #: Per step number (1-based) with ``expect_refusal``: the refusal, or None when it was not refused.
    refusals: dict[int, str | None] = field(default_factory=dict)
    #: How the gateway ended when it ended by itself (an error it stopped on), for the evidence.
    exit_error: str | None = None
    #: When the runner first saw each seq stored at the MES stand-in (Unix time), for latency criteria.
    mes_seen: dict[int, float] = field(default_factory=dict)
    #: The cost of the gateway's last run, measured at its stop (None until it stopped once).
    usage: Usage | None = None
    _run_started: tuple[float, float] = (0.0, 0.0)
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    _running: RunningGateway | None = None
    _stop: asyncio.Event | None = None
    _task: asyncio.Task[Any] | None = None
    _proc: asyncio.subprocess.Process | None = None

    # -- set-up and tear-down ------------------------------------------------------------------
    async def __aenter__(self) -> Rig:
        await self._stack.__aenter__()
        try:
            await self._start_simulators()
            self.work_dir.mkdir(parents=True, exist_ok=True)
            pki = {name: await client_certificate(self.work_dir / "pki", name) for name in self.pki_clients}
            for name in self.pki_expired:
                pki[name] = await asyncio.to_thread(expired_client_certificate, self.work_dir / "pki", name)
            self.resolved, loaded = resolve_site(self.site_file, self.work_dir, self.sims, pki)
            self.gateway_id = loaded.site.gateway.id
            self.journal_path = loaded.site.journal.path
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.stop_gateway()
        finally:
            await self._stack.aclose()

    async def _start_simulators(self) -> None:
        """The site's simulators, found by kind through the installed factories, stopped with the rig."""
        factories = sim_factories()
        for entry in declared_simulators(self.site_file):
            if entry.kind not in factories:
                raise ConfigError(f"{self.site_file}: simulators: {entry.name}: unknown simulator kind {entry.kind!r}")
            sim = factories[entry.kind](**entry.options)
            await self._stack.enter_async_context(sim)  # type: ignore[arg-type]
            self.sims[entry.name] = sim

    # -- observations --------------------------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        """Every committed record as the JSON body it was hashed from, with seq and hash."""
        if not self.journal_path.exists():
            return []
        out = []
        with JournalReader(self.journal_path) as reader:
            for seq, payload, raw, hash_ in reader.rows():
                body = orjson.loads(payload)
                body["seq"], body["hash"], body["raw_bytes"] = seq, hash_, len(raw or b"")
                out.append(body)
        return out

    def audit(self) -> list[dict[str, Any]]:
        if not self.journal_path.exists():
            return []
        with JournalReader(self.journal_path) as reader:
            return list(reader.audit())  # type: ignore[arg-type]

    def committed(self) -> int:
        if self._running is not None:
            return self._running.journal.last_seq
        if not self.journal_path.exists():
            return 0
        with JournalReader(self.journal_path) as reader:
            return reader.last_seq()

    def cursor(self, sink: str = "mes") -> int:
        if self._running is not None:
            for f in self._running.forwarders:
                if f.config.name == sink:
                    return f.status.cursor
        if not self.journal_path.exists():
            return 0
        with JournalReader(self.journal_path) as reader:
            return reader.get_cursor(f"sink:{sink}")

    @property
    def mes(self) -> Any | None:
        """The MES stand-in, when the site declares one named ``mes``."""
        return self.sims.get("mes")

    def mes_sequences(self) -> list[int]:
        return list(self.mes.sequences(self.gateway_id)) if self.mes is not None else []

    def sim_number(self, name: str, attr: str) -> float:
        """A number from a simulator's ``state()`` snapshot (StepFailed when there is no such number)."""
        return sim_steps.sim_number(self.sims, name, attr)

    def sample(self) -> None:
        committed = self.committed()
        seqs = self.mes_sequences()
        delivered = len(seqs)
        if delivered > len(self.mes_seen):  # stored in order of first receipt: only the new ones are unseen
            now = time.time()
            for seq in seqs[len(self.mes_seen):]:
                self.mes_seen.setdefault(seq, now)
        up = self.mes.is_up if self.mes is not None else None
        self.timeline.append(Sample(time.monotonic() - self.started_at, committed, delivered, up))

    async def wait(self, predicate: Callable[[], bool], timeout_s: float, what: str, *, threaded: bool = False) -> None:
        """Poll ``predicate`` until true or ``timeout_s``; a journal scan (``threaded``) runs off the loop."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.sample()
            if await asyncio.to_thread(predicate) if threaded else predicate():
                return
            if time.monotonic() >= deadline:
                raise StepFailed(f"waited {timeout_s:g} s for {what}")
            await asyncio.sleep(POLL_S * 4 if threaded else POLL_S)

    # -- steps ---------------------------------------------------------------------------------
    async def run_step(self, step: Step, number: int = 0) -> str:
        """Carry out step ``number`` (1-based); a short observation of what happened."""
        try:
            observed = await self._do(step)
        except StepRefused as exc:
            if not step.expect_refusal:
                raise StepFailed(f"refused: {exc}") from None
            self.refusals[number] = str(exc)
            return f"refused, as the step expects: {exc}"
        if step.expect_refusal:
            self.refusals[number] = None
            return f"NOT refused: {observed}"
        return observed

    async def _do(self, step: Step) -> str:
        if step.wait_for is not None:
            return await self._wait_for(step.wait_for)
        if step.inject is not None:
            return sim_steps.inject(self.sims, step.inject)
        if step.clear is not None:
            return sim_steps.clear(self.sims, step.clear)
        if step.restore is not None:
            return await sim_steps.restore(self.sims, step.restore)
        if step.mes is not None:
            return await mes_action(self.sims, step.mes)
        if step.bind_lot is not None:
            return await bind_lot(self._running, step.bind_lot)
        if step.tamper is not None:
            return await self.tamper(step.tamper)
        if step.kill_gateway:
            committed = self.committed()
            await self.kill_gateway()
            return f"gateway killed with SIGKILL at committed seq {committed}, MES cursor {self.cursor()}"
        if step.restart_sim is not None:
            return await sim_steps.restart(self.sims, step.restart_sim)
        if step.edit_site is not None:
            self.journal_path = edit_site(self.resolved, step.edit_site.set).site.journal.path
            return f"site file changed: {step.edit_site.set}"
        if step.cli is not None:
            return await run_cli(step.cli, self.resolved, self.work_dir)
        if step.api is not None:
            return await call_api(self._running, step.api, self.records)
        if step.restart_gateway:
            if self.gateway_running:
                await self.stop_gateway()
            await self.start_gateway()
            return "gateway started again"
        await self.stop_gateway()
        return f"gateway stopped cleanly at committed seq {self.committed()}"

    async def _wait_for(self, cond: Condition) -> str:
        t0 = time.monotonic()
        if cond.gateway_exited:
            await self.wait(self._gateway_ended, cond.timeout_s, "the gateway to end by itself")
            await self.stop_gateway()
            if self.exit_error is not None:
                raise StepRefused(self.exit_error)
            return f"the gateway ended after {time.monotonic() - t0:.2f} s without an error"
        if cond.sim_state is not None:
            check = cond.sim_state
            await self.wait(lambda: check.holds(self.sim_number(check.sim, check.field)), cond.timeout_s,
                            check.describe())
            return f"after {time.monotonic() - t0:.2f} s: {check.sim} {check.field} = " \
                   f"{self.sim_number(check.sim, check.field):g}"
        if cond.seconds is not None:
            end = t0 + cond.seconds
            while time.monotonic() < end:
                self.sample()
                await asyncio.sleep(min(POLL_S * 4, max(0.0, end - time.monotonic())))
            return f"{cond.seconds:g} s passed"
        if cond.records is not None:
            want, after = cond.records, cond.after

            def enough() -> bool:
                records = self.records()
                if after is not None:
                    last = max((i for i, r in enumerate(records) if after.matches(r)), default=len(records))
                    records = records[last + 1:]
                n = sum(1 for r in records if want.matches(r))
                return n >= (want.min_count if want.min_count is not None else want.count or 0)

            what = f"records {want.model_dump(exclude_none=True)}"
            if after is not None:
                what += f" after the last {after.model_dump(exclude_none=True)}"
            await self.wait(enough, cond.timeout_s, what, threaded=True)
        elif cond.mes_stored is not None:
            n = cond.mes_stored
            await self.wait(lambda: len(self.mes_sequences()) >= n, cond.timeout_s, f"{n} records at the MES")
        elif cond.committed is not None:
            n = cond.committed
            await self.wait(lambda: self.committed() >= n, cond.timeout_s, f"{n} committed records")
        elif cond.backlog is not None:
            n = cond.backlog
            await self.wait(lambda: self.committed() - self.cursor() >= n, cond.timeout_s, f"a backlog of {n}")
        else:
            await self.wait(
                lambda: self.committed() > 0 and len(self.mes_sequences()) >= self.committed(),
                cond.timeout_s, "every committed record at the MES",
            )
        return (f"after {time.monotonic() - t0:.2f} s: committed {self.committed()}, MES cursor {self.cursor()}"
                f"{f', MES stored {len(self.mes_sequences())}' if self.mes is not None else ''}")
