"""IQ-08 to IQ-11, what the host offers the site: a UTC, synchronised clock, the listen ports it needs, the
certificates and keys it names, and its serial devices (simulator placeholders are a rig's, not checked)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel

from gateway.config import LoadedSite
from gateway.qualify.evidence import Item, ntp_synchronized
from gateway.qualify.iq.item import CERT_WARN_DAYS, site_check


def clock() -> Item:
    c = site_check("IQ-08")
    now = datetime.now(UTC)
    local = datetime.now().astimezone()
    offset = local.utcoffset() or timedelta(0)
    c.step(f"system clock {now.isoformat(timespec='seconds')}; local zone {local.tzname()} "
           f"(UTC{_offset(offset)})")
    synced = ntp_synchronized()
    c.step("asked `timedatectl show -p NTPSynchronized`: " + {True: "yes", False: "no", None: "not reported"}[synced])
    if offset != timedelta(0):
        c.warnings.append(f"the host's local zone is UTC{_offset(offset)}; records are stamped in UTC regardless")
    if synced is None:
        c.warnings.append("NTP sync not reported by the OS: check the time service by hand")
    observed = (f"records stamped in UTC; host zone {local.tzname()} (UTC{_offset(offset)}); NTP synchronised: "
                + {True: "yes", False: "NO", None: "not reported"}[synced])
    return c.done(synced is not False, observed)


def _offset(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "−"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def listen_ports(loaded: LoadedSite, raw: Any) -> Item:
    c = site_check("IQ-09")
    wanted: list[tuple[str, str, int]] = []
    if loaded.site.api is not None:
        wanted.append(("operator API", loaded.site.api.host, loaded.site.api.port))
    raw_sinks = raw.get("sinks") if isinstance(raw, dict) else None
    for i, sink in enumerate(loaded.site.sinks):
        endpoint = getattr(sink, "endpoint", None)
        if sink.type != "opcua-server" or not isinstance(endpoint, str) or not sink.enabled:
            continue
        if _placeholder(raw_sinks, i, "endpoint"):
            c.step(f"sink {sink.name}: endpoint is a simulator placeholder, not checked")
            continue
        url = urlparse(endpoint)
        wanted.append((f"sink {sink.name}", url.hostname or "0.0.0.0", url.port or 4840))
    taken = []
    for what, host, port in wanted:
        error = port_free(host, port)
        c.step(f"bind {host}:{port} ({what}): " + (error or "free"))
        if error:
            taken.append(f"{what} {host}:{port} ({error})")
    if not wanted:
        return c.done(True, "the site listens on no port")
    if taken:
        return c.done(False, "in use: " + "; ".join(taken))
    return c.done(True, "free: " + ", ".join(f"{w} {h}:{p}" for w, h, p in wanted))


def port_free(host: str, port: int) -> str | None:
    """None when ``host:port`` can be bound now (as a server would), else why not."""
    if port == 0:
        return None
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        return f"cannot resolve: {exc.strerror or exc}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        if os.name != "nt":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's servers do
        try:
            s.bind(address)
            s.listen(1)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def certificates(loaded: LoadedSite) -> Item:
    c = site_check("IQ-10")
    found = list(_named_files(loaded))
    certs = [(owner, name, path) for owner, name, path in found if _is_certificate_field(name)]
    keys = [(owner, name, path) for owner, name, path in found if _is_key_field(name)]
    if not certs and not keys:
        c.step("no certificate or key named in the site file")
        return c.done(True, "no certificates named")
    try:
        from cryptography import x509  # the OPC UA stack's dependency; read lazily
    except ImportError:
        return c.done(False, "cannot parse certificates: the cryptography package is not installed")
    now = datetime.now(UTC)
    problems, seen = [], []
    for owner, name, path in certs:
        try:
            data = path.read_bytes()
            parsed = (x509.load_pem_x509_certificates(data) if b"-----BEGIN" in data
                      else [x509.load_der_x509_certificate(data)])
        except (OSError, ValueError) as exc:
            problems.append(f"{owner} {name} {path}: {getattr(exc, 'strerror', None) or exc}")
            c.step(f"{owner} {name}: {path}: unreadable")
            continue
        for cert in parsed:
            subject = cert.subject.rfc4514_string() or "(no subject)"
            until = cert.not_valid_after_utc
            c.step(f"{owner} {name}: {path}: {subject}, valid {cert.not_valid_before_utc:%Y-%m-%d} to {until:%Y-%m-%d}")
            if until <= now:
                problems.append(f"{owner} {name} {path}: {subject} expired {until:%Y-%m-%d}")
            elif cert.not_valid_before_utc > now:
                start = cert.not_valid_before_utc
                problems.append(f"{owner} {name} {path}: {subject} not valid before {start:%Y-%m-%d}")
            elif until - now < timedelta(days=CERT_WARN_DAYS):
                c.warnings.append(f"{owner} {name}: {subject} expires {until:%Y-%m-%d}")
            seen.append(f"{subject} until {until:%Y-%m-%d}")
    for owner, name, path in keys:
        if not path.is_file():
            problems.append(f"{owner} {name} {path}: missing")
        c.step(f"{owner} {name}: {path}: " + ("present" if path.is_file() else "MISSING"))
    if problems:
        return c.done(False, "; ".join(problems))
    return c.done(True, f"{len(seen)} certificate(s) valid ({'; '.join(seen)}); {len(keys)} key file(s) present")


def _is_certificate_field(name: str) -> bool:
    return "cert" in name or name in ("ca_file", "cafile")


def _is_key_field(name: str) -> bool:
    return name.endswith("key") or name.endswith("key_file")


def _named_files(loaded: LoadedSite) -> Iterator[tuple[str, str, Path]]:
    """(owner, field name, path) for every Path field of the equipment and sinks that names a cert or key."""
    owners: list[tuple[str, BaseModel]] = [(f"equipment {eq.id}", eq) for eq in loaded.equipment]
    owners += [(f"sink {s.name}", s) for s in loaded.site.sinks]
    for owner, model in owners:
        for name, value in _fields(model):
            if not (_is_certificate_field(name) or _is_key_field(name)):
                continue
            for item in value if isinstance(value, list | tuple) else [value]:
                if isinstance(item, Path):
                    yield owner, name, item


def _fields(model: BaseModel) -> Iterator[tuple[str, Any]]:
    """Every leaf field as (name, value), nested sections included (a sink's ``tls:`` block)."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _fields(value)
        else:
            yield name, value


def serial_ports(loaded: LoadedSite, raw: Any) -> Item:
    c = site_check("IQ-11")
    raw_eq = raw.get("equipment") if isinstance(raw, dict) else None
    present, missing, rig = [], [], []
    for i, eq in enumerate(loaded.equipment):
        for name in ("serial_port", "port"):
            value = getattr(eq, name, None)
            if not isinstance(value, str) or not value:
                continue
            if _placeholder(raw_eq, i, name):
                rig.append(eq.id)
                c.step(f"equipment {eq.id}: {name} is a simulator placeholder (qualification rig), not checked")
                continue
            if "://" in value:
                c.step(f"equipment {eq.id}: {name} {value} is a network URL, not a local device")
                continue
            exists = Path(value).exists()
            c.step(f"equipment {eq.id}: {value}: " + ("present" if exists else "MISSING"))
            (present if exists else missing).append(f"{eq.id} {value}")
    if rig:
        c.warnings.append(f"simulated serial lines ({', '.join(rig)}): a qualification rig, not site wiring")
    if missing:
        return c.done(False, "missing: " + ", ".join(missing))
    if not present and not rig:
        return c.done(True, "the site names no local serial device")
    return c.done(True, ", ".join(["present: " + ", ".join(present)] if present else [])
                  + ("; " if present and rig else "") + (f"{len(rig)} simulated" if rig else ""))


def _placeholder(raw_list: Any, index: int, key: str) -> bool:
    """Whether the raw YAML value at ``raw_list[index][key]`` is a ``${sim.…}`` placeholder."""
    try:
        value = raw_list[index][key]
    except (TypeError, IndexError, KeyError):
        return False
    return isinstance(value, str) and "${sim." in value
