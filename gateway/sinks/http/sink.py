"""The MES-over-HTTP sink: one POST per batch, an answer per record, a poison record isolated by bisection.

What the MES implements is in README.md (the wire contract). In short: ``POST url`` with the batch as
JSON and ``Idempotency-Key: <gateway_id>:<first_seq>-<last_seq>``; a 2xx answer accepts the batch,
optionally with ``{"results": [{"seq", "status", "reason"}]}`` per record. A 4xx without per-record
results on several records is bisected within the same ``write`` until the records the MES refuses are
alone, so one bad record never holds back the good ones. Everything that says "not now" rather than
"never" (401/403, 408, 429, 5xx, no connection, TLS failure, timeout, an endpoint that is not there)
raises :class:`SinkError`: the forwarder backs off, reconnects and sends the same records again, and
the MES answers ``duplicate`` for what it already has.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import structlog

from gateway.sinks.base import Outcome, SinkBatch, SinkContext, SinkError
from gateway.sinks.credentials import error_reason, read_secret, tls_context
from gateway.sinks.http.config import HttpSinkConfig
from gateway.sinks.wire import StoredRecords

log = structlog.get_logger(__name__)

#: Statuses that say the whole batch may be sent again later, not that a record is bad.
_TRANSIENT = frozenset({408, 425, 429})
#: 4xx statuses that say the url is wrong, not a record: never a reason to dead-letter records.
_WRONG_ENDPOINT = frozenset({404, 405, 410, 414, 415})
_EXCERPT = 200
_STATUSES = {"accepted", "duplicate", "rejected", "retry"}
_TAKEN = frozenset({"accepted", "duplicate"})


class HttpSink:
    """Posts batches to one MES endpoint. ``connect`` only prepares the session; it sends nothing."""

    #: The forwarder hands records as stored: the body is built from their JSON without decoding them.
    takes_stored = True

    def __init__(self, config: HttpSinkConfig, context: SinkContext) -> None:
        self.name = config.name
        self.config = config
        self._session: aiohttp.ClientSession | None = None
        self._log = log.bind(sink=config.name, url=config.url)

    async def connect(self) -> None:
        """Read the token and TLS material and open a session; SinkError naming what is missing."""
        await self.close()
        headers = {**self.config.headers, "Content-Type": "application/json"}
        token = self._token()
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        connector = aiohttp.TCPConnector(ssl=self._ssl())
        self._session = aiohttp.ClientSession(
            headers=headers,
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
            raise_for_status=False,
        )

    async def close(self) -> None:
        """Close the session and its connections. Idempotent."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def write(self, batch: SinkBatch) -> Sequence[Outcome] | None:
        """One Outcome per record of ``batch`` (None when the MES accepted all), or SinkError."""
        if self._session is None:
            raise RuntimeError(f"sink {self.name}: write() before connect()")
        outcomes = await self._deliver(self._session, batch, bisecting=False)
        if outcomes.count(_ACCEPTED) == len(outcomes):  # every one accepted (counted in C)
            return None
        return outcomes

    # -- one request, and bisection ------------------------------------------------------------
    async def _deliver(self, session: aiohttp.ClientSession, batch: SinkBatch, *, bisecting: bool) -> list[Outcome]:
        status, body = await self._post(session, batch)
        if 200 <= status < 300:
            results = self._results(status, body)
            return [_ACCEPTED] * len(batch) if results is None else self._outcomes(batch, results)
        if 400 <= status < 500 and status not in _TRANSIENT and status not in (401, 403, *_WRONG_ENDPOINT):
            results = self._results(status, body)
            if results is not None:
                return self._outcomes(batch, results)
            reason = f"MES answered {status}: {_excerpt(body)}"
            if len(batch) == 1:
                return [Outcome.rejected(reason)]
            if not bisecting:
                self._log.warning(
                    "http_sink_bisecting", status=status, first_seq=batch.first_seq, last_seq=batch.last_seq
                )
            middle = len(batch) // 2
            left = await self._deliver(session, _part(batch, 0, middle), bisecting=True)
            right = await self._deliver(session, _part(batch, middle, len(batch)), bisecting=True)
            return left + right
        raise SinkError(self._refusal(status, body))

    async def _post(self, session: aiohttp.ClientSession, batch: SinkBatch) -> tuple[int, bytes]:
        body = request_body(batch, datetime.now(UTC))
        url = self.config.url
        try:
            async with session.post(
                url, data=body, headers={"Idempotency-Key": batch.idempotency_key}, allow_redirects=False
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise SinkError(
                f"{self.name}: the MES at {url} did not answer within timeout_s={self.config.timeout_s:g} s"
            ) from exc
        except aiohttp.ClientConnectorCertificateError as exc:
            raise SinkError(
                f"{self.name}: the MES certificate at {url} is not trusted ({error_reason(exc.certificate_error)}): "
                "give the CA that signed it as ca_file"
            ) from exc
        except aiohttp.ClientSSLError as exc:
            reason = error_reason(exc)
            raise SinkError(f"{self.name}: TLS with the MES at {url} failed: {reason}{self._mtls_hint}") from exc
        except aiohttp.ClientConnectorError as exc:
            raise SinkError(f"{self.name}: cannot connect to the MES at {url}: {error_reason(exc.os_error)}") from exc
        except aiohttp.ClientError as exc:
            # With TLS 1.3 a server that wants a client certificate resets the connection after the handshake.
            raise SinkError(
                f"{self.name}: request to the MES at {url} failed: {error_reason(exc)}{self._mtls_hint}"
            ) from exc

    @property
    def _mtls_hint(self) -> str:
        if self.config.is_https and self.config.client_cert is None:
            return " (if the MES requires mutual TLS, give client_cert and client_key)"
        return ""

    # -- reading the answer --------------------------------------------------------------------
    def _results(self, status: int, body: bytes) -> list[Any] | None:
        """The ``results`` list of a JSON answer, None when the answer has none."""
        try:
            doc = orjson.loads(body) if body.strip() else None
        except orjson.JSONDecodeError:
            return None
        if not isinstance(doc, dict) or doc.get("results") is None:
            return None
        results = doc["results"]
        if not isinstance(results, list):
            raise SinkError(f"{self.name}: the MES answered {status} with results that are not a list")
        return results

    def _outcomes(self, batch: SinkBatch, results: list[Any]) -> list[Outcome]:
        by_seq: dict[int, Outcome] = {}
        for item in results:
            seq, verdict = (item.get("seq"), item.get("status")) if type(item) is dict else (None, None)
            if verdict in _TAKEN and type(seq) is int:  # the usual answer, checked first
                by_seq[seq] = _ACCEPTED
                continue
            if type(seq) is not int or verdict not in _STATUSES:
                raise SinkError(
                    f"{self.name}: the MES answered a malformed result {_excerpt(orjson.dumps(item))}: "
                    'each needs an integer "seq" and a "status" of accepted, duplicate, rejected or retry'
                )
            reason = item.get("reason")
            reason = str(reason) if reason is not None else None
            if verdict == "rejected":
                by_seq[seq] = Outcome.rejected(reason or "rejected by the MES (no reason given)")
            else:
                by_seq[seq] = Outcome.retry(reason or "the MES asked for this record again later")
        missing = [seq for seq in batch.seqs if seq not in by_seq]
        if missing:
            self._log.warning("http_sink_results_incomplete", missing=len(missing), first_missing=missing[0])
            for seq in missing:
                by_seq[seq] = Outcome.retry(f"the MES did not answer for seq {seq}")
        return [by_seq[seq] for seq in batch.seqs]

    def _refusal(self, status: int, body: bytes) -> str:
        """One line for a status that refuses the whole batch."""
        if status in (401, 403):
            what = (
                "bearer_token_env"
                if self.config.bearer_token_env
                else "bearer_token_file"
                if self.config.bearer_token_file
                else "the token: none is configured (bearer_token_env or bearer_token_file)"
            )
            return f"{self.name}: the MES refused the credentials ({status}): check {what}"
        if 300 <= status < 400 or status in _WRONG_ENDPOINT:
            return f"{self.name}: {self.config.url} is not the MES records endpoint ({status}): check url"
        return f"{self.name}: the MES answered {status}: {_excerpt(body)}"

    # -- credentials ---------------------------------------------------------------------------
    def _token(self) -> str | None:
        cfg = self.config
        return read_secret(self.name, "the MES bearer token", env=cfg.bearer_token_env, env_field="bearer_token_env",
                           file=cfg.bearer_token_file, file_field="bearer_token_file")

    def _ssl(self) -> ssl.SSLContext | bool:
        """The TLS context for https, True (aiohttp's default checks) for plain http."""
        cfg = self.config
        if not cfg.is_https:
            return True
        if not cfg.verify_tls:
            self._log.warning("http_sink_tls_unverified", hint="verify_tls is false: for commissioning only")
        return tls_context(self.name, ca_file=cfg.ca_file, client_cert=cfg.client_cert, client_key=cfg.client_key,
                           verify=cfg.verify_tls)


_ACCEPTED = Outcome.accepted()


def request_body(batch: SinkBatch, sent_at: datetime) -> bytes:
    """The POST body of a batch (the wire contract in README.md).

    Records handed over as stored go in as their JSON bytes, spliced into the envelope: byte for byte
    what encoding their wire dicts gives, without decoding them first.
    """
    envelope = {
        "gateway_id": batch.gateway_id,
        "first_seq": batch.first_seq,
        "last_seq": batch.last_seq,
        "attempt": batch.attempt,
        "sent_at": sent_at,
        "records": batch.records,
    }
    records = batch.records
    if not isinstance(records, StoredRecords):
        return orjson.dumps(envelope, option=orjson.OPT_UTC_Z)
    envelope["records"] = []
    head = orjson.dumps(envelope, option=orjson.OPT_UTC_Z)  # ends with "records":[]}
    return head[:-3] + records.json_array() + b"}"


def _part(batch: SinkBatch, start: int, stop: int) -> SinkBatch:
    """Records ``start:stop`` of a batch as a batch of their own (its own idempotency key)."""
    return SinkBatch(batch.gateway_id, batch.records[start:stop], attempt=batch.attempt, seqs=batch.seqs[start:stop])


def _excerpt(body: bytes) -> str:
    """The first characters of an answer on one line, for a reason or an error message."""
    text = " ".join(body.decode("utf-8", errors="replace").split())
    if not text:
        return "(no body)"
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…"


