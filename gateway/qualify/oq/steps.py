"""The rig one case runs on: its simulators, its gateway (in-process or a process) and its journal.

Simulators are found by kind through the installed simulator factories (the core never imports them);
the runner starts them itself so it can inject faults, then hands the gateway a resolved copy of the
site file (placeholders filled, no ``simulators:`` section) in the case's own folder, so each case has
its own journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.config import SimulatorEntry, YamlDocument, load_site, substitute
from gateway.errors import ConfigError, GatewayError, gateway_error_in
from gateway.identity import IdentityError
from gateway.journal import JournalReader
from gateway.plugins import adapter_plugins, sim_factories
from gateway.qualify.oq.protocol import ApiCall, BindLot, Cli, Condition, MesAction, RecordFilter, SimAction, Step
from gateway.runtime import RunningGateway, declared_simulators, run_gateway
from gateway.simulators import ENDPOINT_ATTRS

POLL_S = 0.05
_OWN_PLACEHOLDER = re.compile(r"\$\{(work|pki\.[A-Za-z0-9_-]+\.(?:cert|key)|sim\.[A-Za-z0-9._-]+?\.certificate)\}")


async def _client_certificate(directory: Path, name: str) -> dict[str, str]:
    """A self-signed OPC UA client key + certificate (DER) for the case, made fresh in its folder."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    key, cert = directory / f"{name}_key.pem", directory / f"{name}_cert.der"
    await setup_self_signed_certificate(
        key, cert, f"urn:cgt-gateway:oq:{name}", socket.gethostname(), [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"countryName": "DE", "organizationName": "cgt-gateway OQ", "commonName": name},
    )
    return {"cert": str(cert), "key": str(key)}


class StepFailed(Exception):
    """A step could not be carried out (a wait ran out, a simulator refused a fault): the case fails."""


class StepRefused(Exception):
    """The gateway refused what the step asked (a bad DIN, a role too low, a changed config, a disk floor).

    A step with ``expect_refusal`` records it for a ``refused`` criterion; any other step fails on it.
    """


@dataclass
class Sample:
    """One point of the delivery timeline: seconds since the case started, committed, delivered."""

    t: float
    committed: int
    delivered: int
    mes_up: bool | None


@dataclass(frozen=True)
class Usage:
    """What the gateway's last run cost: CPU seconds over wall seconds, and its peak resident memory."""

    cpu_s: float
    wall_s: float
    peak_rss_mb: float
    how: str


def _proc_figures(pid: int | str) -> tuple[float, float]:
    """CPU seconds (user + system) and peak RSS in MB of a process, from the operating system's own figures."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # after the command name, which may hold spaces
    cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    hwm = next((line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if line.startswith("VmHWM:")), "0")
    return cpu_s, int(hwm) / 1024


@dataclass
class Rig:
    """Simulators + gateway + journal of one case."""

    site_file: Path
    work_dir: Path
    mode: str
    #: Client certificates to make in the case's folder before the site is resolved (``${pki.NAME.cert}``).
    pki_clients: list[str] = field(default_factory=list)
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
            await self._start_simulators(declared_simulators(self.site_file))
            self.work_dir.mkdir(parents=True, exist_ok=True)
            pki = {name: await _client_certificate(self.work_dir / "pki", name) for name in self.pki_clients}
            self._resolve_site(pki)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.stop_gateway()
        finally:
            await self._stack.aclose()

    async def _start_simulators(self, entries: list[SimulatorEntry]) -> None:
        factories = sim_factories()
        for entry in entries:
            if entry.kind not in factories:
                raise ConfigError(f"{self.site_file}: simulators: {entry.name}: unknown simulator kind {entry.kind!r}")
            sim = factories[entry.kind](**entry.options)
            await self._stack.enter_async_context(sim)  # type: ignore[arg-type]
            self.sims[entry.name] = sim

    def _resolve_site(self, pki: dict[str, dict[str, str]]) -> None:
        doc = YamlDocument(self.site_file)
        data = dict(doc.data)
        data.pop("simulators", None)
        data = self._substitute_own(data, pki)
        endpoints = {name: {a: getattr(sim, a, None) for a in ENDPOINT_ATTRS} for name, sim in self.sims.items()}
        data = substitute(data, endpoints)
        api = data.get("api")
        if isinstance(api, dict) and api.get("users_file"):  # the site's users, wherever the copy is written
            api["users_file"] = str((self.site_file.parent / str(api["users_file"])).resolve())
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.resolved = self.work_dir / "site.yaml"
        self.resolved.write_text(yaml.safe_dump(data, sort_keys=False))
        loaded = load_site(self.resolved, adapter_plugins())
        self.gateway_id = loaded.site.gateway.id
        self.journal_path = loaded.site.journal.path

    def _substitute_own(self, data: Any, pki: dict[str, dict[str, str]]) -> Any:
        """The runner's own placeholders: ``${work}`` (the case's folder), ``${pki.NAME.cert|key}`` (a client
        pair the case made) and ``${sim.NAME.certificate}`` (the server certificate a secure simulator shows)."""
        if isinstance(data, dict):
            return {k: self._substitute_own(v, pki) for k, v in data.items()}
        if isinstance(data, list):
            return [self._substitute_own(v, pki) for v in data]
        if not isinstance(data, str) or "${" not in data:
            return data

        def value(match: re.Match[str]) -> str:
            what = match.group(1)
            if what == "work":
                return str(self.work_dir)
            kind, name, attr = what.split(".")
            if kind == "pki":
                if name not in pki:
                    raise ConfigError(f"{self.site_file}: placeholder {match.group(0)} names no pki client of the case")
                return pki[name][attr]
            sim = self.sims.get(name)
            path = getattr(sim, "certificate_path", None) if sim is not None else None
            if path is None:
                raise ConfigError(f"{self.site_file}: placeholder {match.group(0)} names no secure simulator")
            return str(path)

        return _OWN_PLACEHOLDER.sub(value, data)

    # -- the gateway ---------------------------------------------------------------------------
    @property
    def gateway_running(self) -> bool:
        return self._task is not None or self._proc is not None

    async def start_gateway(self) -> None:
        """Start the gateway; StepRefused with its one line when it will not start."""
        if self.gateway_running:
            raise StepFailed("the gateway is already running")
        self.exit_error = None
        self._run_started = (time.monotonic(), self._own_cpu_s())
        if self.mode == "process":
            with (self.work_dir / "gateway-stderr.log").open("ab") as err:
                self._proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "gateway.cli", "run", "-c", str(self.resolved),
                    stdout=subprocess.DEVNULL, stderr=err,
                )
            await self.wait(self.journal_path.exists, 20, "the gateway process to open its journal")
            return
        try:
            loaded = load_site(self.resolved, adapter_plugins())
        except GatewayError as exc:
            raise StepRefused(_first_line(exc)) from None
        started: asyncio.Future[RunningGateway] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(
            run_gateway(loaded, stop=self._stop, on_started=started.set_result, drain_grace_s=10), name="oq-gateway"
        )
        done, _ = await asyncio.wait([started, self._task], timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if started not in done:
            await self.stop_gateway()
            if self.exit_error is not None:
                raise StepRefused(self.exit_error)
            raise StepFailed("the gateway did not start within 30 s")
        self._running = started.result()

    async def stop_gateway(self) -> None:
        """A clean stop: devices first, then the sinks drain, then the journal closes.

        A gateway that had already ended on an error is not an error of the stop: ``exit_error`` keeps it.
        """
        if self._task is not None:
            assert self._stop is not None
            self._measure(None)
            self._stop.set()
            task, self._task, self._running = self._task, None, None
            try:
                await task
            except Exception as exc:
                error = gateway_error_in(exc)
                if error is None:
                    raise
                self.exit_error = _first_line(error)
        if self._proc is not None:
            proc, self._proc = self._proc, None
            if proc.returncode is None:
                with contextlib.suppress(OSError, ValueError, StopIteration):
                    self._measure(proc.pid)
                proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 40)
            if proc.returncode not in (0, -signal.SIGTERM):
                self.exit_error = f"exit status {proc.returncode}: {self._stderr_tail()}"

    @staticmethod
    def _own_cpu_s() -> float:
        use = resource.getrusage(resource.RUSAGE_SELF)
        return use.ru_utime + use.ru_stime

    def _measure(self, pid: int | None) -> None:
        """The run's cost just before the stop (the drain is not part of the load)."""
        started, cpu0 = self._run_started
        wall = time.monotonic() - started
        if pid is not None:
            cpu, peak = _proc_figures(pid)
            self.usage = Usage(cpu, wall, peak, "for the gateway process")
        else:
            _, peak = _proc_figures("self")
            self.usage = Usage(self._own_cpu_s() - cpu0, wall, peak,
                               "in-process (runner and simulators included: an upper bound)")

    def _stderr_tail(self) -> str:
        path = self.work_dir / "gateway-stderr.log"
        lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
        return lines[-1] if lines else "(no output)"

    def _gateway_ended(self) -> bool:
        if self._task is not None:
            return self._task.done()
        if self._proc is not None:
            return self._proc.returncode is not None
        return True

    async def kill_gateway(self) -> None:
        if self._proc is None:
            raise StepFailed("kill_gateway: no gateway process is running")
        proc, self._proc = self._proc, None
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()

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
            self._sim(step.inject).inject(step.inject.fault, **_unit(step.inject), **step.inject.params)
            return f"{step.inject.fault} injected on {step.inject.sim}"
        if step.clear is not None:
            self._sim(step.clear).clear(step.clear.fault, **_unit(step.clear))
            return f"{step.clear.fault} cleared on {step.clear.sim}"
        if step.restore is not None:
            await self._sim(step.restore).restore()
            return f"{step.restore.sim} restored"
        if step.mes is not None:
            return await self._mes(step.mes)
        if step.bind_lot is not None:
            return await self._bind(step.bind_lot)
        if step.tamper is not None:
            if self.gateway_running:
                await self.stop_gateway()
            with closing(sqlite3.connect(self.journal_path, isolation_level=None)) as db:
                changed = db.execute(step.tamper).rowcount
            return f"journal edited directly ({changed} row(s) changed)"
        if step.kill_gateway:
            committed = self.committed()
            await self.kill_gateway()
            return f"gateway killed with SIGKILL at committed seq {committed}, MES cursor {self.cursor()}"
        if step.restart_sim is not None:
            sim = self._sim(SimAction(sim=step.restart_sim))
            if not callable(getattr(sim, "restart", None)):
                raise StepFailed(f"simulator {step.restart_sim} cannot be restarted")
            await sim.restart()
            return f"{step.restart_sim} restarted on the same endpoint (sessions dropped)"
        if step.edit_site is not None:
            return self._edit_site(step.edit_site.set)
        if step.cli is not None:
            return await self._cli(step.cli)
        if step.api is not None:
            return await self._api(step.api)
        if step.restart_gateway:
            if self.gateway_running:
                await self.stop_gateway()
            await self.start_gateway()
            return "gateway started again"
        await self.stop_gateway()
        return f"gateway stopped cleanly at committed seq {self.committed()}"

    def sim_number(self, name: str, attr: str) -> float:
        """A number from a simulator's ``state()`` snapshot (StepFailed when there is no such number)."""
        if name not in self.sims:
            raise StepFailed(f"no simulator named {name!r} in the site (have: {', '.join(self.sims)})")
        value = getattr(self.sims[name].state(), attr, None)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise StepFailed(f"simulator {name}: state has no number {attr!r}")
        return float(value)

    def _sim(self, action: SimAction) -> Any:
        if action.sim not in self.sims:
            raise StepFailed(f"no simulator named {action.sim!r} in the site (have: {', '.join(self.sims)})")
        return self.sims[action.sim]

    async def _mes(self, action: MesAction) -> str:
        mes = self.sims.get(action.sim)
        if mes is None:
            raise StepFailed(f"no MES stand-in named {action.sim!r} in the site")
        method = getattr(mes, action.action)
        result = method(**action.params)
        if asyncio.iscoroutine(result):
            await result
        return f"MES stand-in {action.action} {action.params or ''}".rstrip()

    async def _bind(self, bind: BindLot) -> str:
        if self._running is None:
            raise StepFailed("bind_lot needs the gateway running in-process")
        try:
            binding = await self._running.identity.bind(
                bind.equipment, bind.lot, performed_by=bind.performed_by, verified_by=bind.verified_by,
                reason=bind.reason, coi_id=bind.coi_id, dins=bind.dins, process_step=bind.process_step,
            )
        except IdentityError as exc:
            raise StepRefused(str(exc)) from None
        return f"lot {binding.lot_id} bound to {bind.equipment} (DIN {binding.din})"

    def _edit_site(self, changes: dict[str, Any]) -> str:
        """Change the case's site file in place (the next start reads it), as an engineer would."""
        data = yaml.safe_load(self.resolved.read_text())
        for dotted, value in changes.items():
            *parents, last = dotted.split(".")
            node = data
            for part in parents:
                node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
            if isinstance(node, list):
                node[int(last)] = value
            else:
                node[last] = value
        self.resolved.write_text(yaml.safe_dump(data, sort_keys=False))
        loaded = load_site(self.resolved, adapter_plugins())  # a broken edit is the protocol's mistake: say so now
        self.journal_path = loaded.site.journal.path
        return f"site file changed: {changes}"

    async def _cli(self, cli: Cli) -> str:
        args = [a.replace("{site}", str(self.resolved)).replace("{work}", str(self.work_dir)) for a in cli.args]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), cli.timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise StepFailed(f"cgt-gateway {' '.join(cli.args)} did not finish within {cli.timeout_s:g} s") from None
        lines = err.decode(errors="replace").strip().splitlines()
        if proc.returncode != 0:
            said = next((ln for ln in reversed(lines) if ln.startswith("error:")), lines[-1] if lines else "")
            raise StepRefused(f"exit status {proc.returncode}: {said or '(no output)'}")
        shown = out.decode(errors="replace").strip().splitlines() or lines  # some commands report on stderr
        return f"cgt-gateway {' '.join(cli.args)}: exit 0{': ' + shown[-1] if shown else ''}"

    async def _api(self, call: ApiCall) -> str:
        api = self._running.api if self._running is not None else None
        if api is None:
            raise StepFailed("api needs the gateway running in-process with an api: section")
        path = call.path
        if "{seq}" in path:
            want = call.seq_of or RecordFilter()
            hits = [r["seq"] for r in await asyncio.to_thread(self.records) if want.matches(r)]
            if not hits:
                raise StepFailed(f"no record {want.model_dump(exclude_none=True)} for {{seq}} in {path}")
            path = path.replace("{seq}", str(hits[-1]))
        headers = {}
        if call.token is not None:
            headers["Authorization"] = f"Bearer {call.token}"
        if call.verifier_token is not None:
            headers["X-Verifier-Token"] = call.verifier_token
        async with aiohttp.ClientSession() as session, session.request(
            call.method, api.url + path, json=call.body, headers=headers, timeout=aiohttp.ClientTimeout(total=10),
        ) as response:
            text = await response.text()
        if response.status >= 400:
            try:
                error = orjson.loads(text).get("error", text)
            except orjson.JSONDecodeError:
                error = text
            raise StepRefused(f"{call.method} {path}: {response.status} {error}")
        return f"{call.method} {path}: {response.status} {text[:200]}"

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
            want = cond.records

            def enough() -> bool:
                n = sum(1 for r in self.records() if want.matches(r))
                return n >= (want.min_count if want.min_count is not None else want.count or 0)

            what = f"records {want.model_dump(exclude_none=True)}"
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


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _unit(action: SimAction) -> dict[str, int]:
    return {"unit_id": action.unit_id} if action.unit_id is not None else {}
