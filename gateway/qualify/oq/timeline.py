"""The steps of a case's timeline: what to wait for, which fault to inject or clear, what the MES stand-in
does, which lot to bind, what to run on the command line or ask the operator API; exactly one per step."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from gateway.qualify.oq.filters import CountedRecords, RecordFilter, SimStateCheck, Strict


class Condition(Strict):
    """What ``wait_for`` waits for, within ``timeout_s``."""

    records: CountedRecords | None = None
    #: With ``records``: count only the records committed after the last one matching this filter
    #: (e.g. Good values after a device restart), none while no record matches it.
    after: RecordFilter | None = None
    #: Records stored by the MES stand-in for this gateway, at least this many.
    mes_stored: int | None = Field(default=None, ge=0)
    #: The committed journal's last seq, at least this much.
    committed: int | None = Field(default=None, ge=0)
    #: A sink's backlog (committed but not delivered), at least this much.
    backlog: int | None = Field(default=None, ge=0)
    #: Every committed record is stored by the MES stand-in.
    mes_caught_up: bool = False
    #: Just let time pass (seconds); for "nothing more must happen" cases and a device kept away for a
    #: while (up to a day: the long outages of a site's own OQ run).
    seconds: float | None = Field(default=None, ge=0, le=86_400)
    #: The gateway ends by itself (a refusal it stops on); with ``expect_refusal`` its error is the refusal.
    gateway_exited: bool = False
    #: A simulator's ``state()`` field reaches at least ``min`` (e.g. a NAK count).
    sim_state: SimStateCheck | None = None
    timeout_s: float = Field(default=20.0, gt=0, le=3_600)

    @model_validator(mode="after")
    def _something(self) -> Condition:
        given = [self.records, self.mes_stored, self.committed, self.backlog, self.seconds, self.sim_state]
        if sum(x is not None for x in given) + self.mes_caught_up + self.gateway_exited != 1:
            raise ValueError("wait_for needs exactly one of records, mes_stored, committed, backlog, mes_caught_up,"
                             " seconds, gateway_exited, sim_state")
        if self.after is not None and self.records is None:
            raise ValueError("wait_for after goes with records (the records counted after it)")
        return self


class SimAction(Strict):
    """A fault for a simulator: ``inject`` starts it, ``clear`` ends it, ``restore`` ends link faults."""

    sim: str
    fault: str | None = None
    #: Numbers, or a list of numbers (the counts a ``scripted_counts`` fault makes a counter carry, whole
    #: numbers kept whole; the temperatures a ``scripted_temperatures`` fault makes a DAQ read).
    params: dict[str, float | list[int] | list[float]] = Field(default_factory=dict)
    unit_id: int | None = None


class MesAction(Strict):
    """Something the MES stand-in does: go down, come up, reject records, or drop them silently."""

    sim: str = "mes"
    action: Literal["go_down", "come_up", "reject", "fail", "hang", "clear"]
    params: dict[str, Any] = Field(default_factory=dict)


class BindLot(Strict):
    """A lot bound to equipment through the identity service (two people, as the gateway requires)."""

    equipment: str
    lot: str
    performed_by: str = "oq-operator"
    verified_by: str = "oq-verifier"
    reason: str = "OQ context association"
    coi_id: str | None = None
    dins: list[str] = Field(default_factory=list)
    process_step: str | None = None


class EditSite(Strict):
    """A change to the case's site file between runs: dotted paths (``equipment.0.poll_interval_s``) to values."""

    set: dict[str, Any] = Field(min_length=1)


class Cli(Strict):
    """The gateway's command line run against the case's site file; ``{site}`` in an argument is its path,
    ``{work}`` the case's own folder (where a backup, an export or a report is written for the criteria).

    A non-zero exit is a refusal (its last stderr line); it fails the case unless the step expects one.
    """

    args: list[str] = Field(min_length=1)
    timeout_s: float = Field(default=60.0, gt=0, le=300)


class ApiCall(Strict):
    """A request to the running gateway's operator API, as a user with ``token`` would make it.

    ``{seq}`` in the path is the seq of the newest record matching ``seq_of``. A 4xx/5xx answer is a
    refusal (status and error); it fails the case unless the step expects one.
    """

    method: Literal["GET", "POST"] = "GET"
    path: str = Field(pattern=r"^/")
    token: str | None = None
    verifier_token: str | None = None
    body: dict[str, Any] | None = None
    seq_of: RecordFilter | None = None


class Step(Strict):
    """One step of a case's timeline; exactly one action per step."""

    wait_for: Condition | None = None
    inject: SimAction | None = None
    clear: SimAction | None = None
    restore: SimAction | None = None
    mes: MesAction | None = None
    kill_gateway: bool = False
    restart_gateway: bool = False
    stop_gateway: bool = False
    bind_lot: BindLot | None = None
    #: SQL run against the journal once the gateway has stopped (a deliberate edit, to prove verify sees it).
    tamper: str | None = None
    #: Stop the simulator and start it again on the same endpoint (a device power-cycled).
    restart_sim: str | None = None
    edit_site: EditSite | None = None
    cli: Cli | None = None
    api: ApiCall | None = None
    #: The step must be refused (a bad DIN, a changed config, a role too low, a disk floor): the refusal is
    #: recorded for a ``refused`` criterion instead of failing the case.
    expect_refusal: bool = False
    note: str | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        actions = [self.wait_for, self.inject, self.clear, self.restore, self.mes, self.bind_lot, self.tamper,
                   self.restart_sim, self.edit_site, self.cli, self.api]
        n = sum(x is not None for x in actions) + self.kill_gateway + self.restart_gateway + self.stop_gateway
        if n != 1:
            raise ValueError("a step does exactly one thing: wait_for, inject, clear, restore, mes, kill_gateway,"
                             " restart_gateway, stop_gateway, bind_lot, tamper, restart_sim, edit_site, cli or api")
        if self.inject is not None and self.inject.fault is None:
            raise ValueError("inject needs a fault")
        if self.clear is not None and self.clear.fault is None:
            raise ValueError("clear needs a fault")
        return self

    def describe(self) -> str:
        """One readable line for progress output and the evidence."""
        if self.note:
            return self.note
        for name in ("wait_for", "inject", "clear", "restore", "mes", "bind_lot", "edit_site", "cli", "api"):
            value = getattr(self, name)
            if value is not None:
                shown = value.model_dump(exclude_defaults=True, exclude_none=True)
                for secret in ("token", "verifier_token"):  # who asked is the user the token names, not the token
                    if secret in shown:
                        shown[secret] = "***"
                return f"{name} {shown}"
        if self.tamper is not None:
            return f"tamper: {self.tamper}"
        if self.restart_sim is not None:
            return f"restart simulator {self.restart_sim}"
        return next(n for n in ("kill_gateway", "restart_gateway", "stop_gateway") if getattr(self, n))
