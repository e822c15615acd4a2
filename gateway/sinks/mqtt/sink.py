"""The MQTT sink: committed records as messages on ISA-95 topics, acknowledged by the broker.

``payload: json`` publishes each record as one message on its parameter's topic; ``payload:
json-batch`` publishes JSON arrays of consecutive records (:mod:`gateway.sinks.mqtt.messages`), which
a catch-up needs: the client costs tens of microseconds per message whatever it carries.

Lifecycle (one :class:`MqttSink` per ``sinks:`` entry, driven by the forwarder)::

    connect()  opens a clean session whose last will is a retained ``offline`` status, then
               publishes a retained ``online`` status (the birth message); SinkError when the
               broker cannot be reached, with one line saying which broker and why.
    write()    publishes the batch's messages in seq order with up to ``max_inflight`` QoS 1/2
               publishes in flight; a record is accepted once the broker acknowledged the message
               that carries it (PUBACK / PUBCOMP). When the connection drops mid-batch the
               acknowledged prefix is accepted and the first record of the first unacknowledged
               message and everything after it come back as ``retry``
               (SinkError when nothing was acknowledged); the next write raises SinkError so the
               forwarder closes, backs off and reconnects (aiomqtt does not reconnect by itself).
    close()    publishes a retained ``offline`` status and disconnects cleanly. Idempotent.

A resend after a lost connection may deliver a record twice; consumers drop duplicates by
``(gateway_id, seq)``, which every payload carries.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any

import aiomqtt
import orjson
import paho.mqtt.client as paho_mqtt
import structlog
from paho.mqtt.reasoncodes import ReasonCode

from gateway.records import utc_now
from gateway.sinks.base import Outcome, SinkBatch, SinkContext, SinkError
from gateway.sinks.credentials import read_secret, tls_context
from gateway.sinks.mqtt.config import MqttSinkConfig
from gateway.sinks.mqtt.messages import Message, TopicCache, plan
from gateway.sinks.mqtt.topics import status_topic

log = structlog.get_logger(__name__)

#: aiomqtt logs a WARNING "There are N pending publish calls." for every publish beyond ten in
#: flight, which is our normal pace; this logger keeps its real errors and nothing else.
_CLIENT_LOG = logging.getLogger("gateway.sinks.mqtt.client")
_CLIENT_LOG.setLevel(logging.ERROR)


class MqttSink:
    """One connection to one broker at a time; a new aiomqtt client for every :meth:`connect`."""

    #: The forwarder hands records as stored: their JSON and topic levels are read without decoding them.
    takes_stored = True

    def __init__(self, config: MqttSinkConfig, context: SinkContext) -> None:
        self.config = config
        self.name = config.name
        self.gateway_id = context.gateway_id
        self.client_id = config.client_id or f"cgt-gateway-{context.gateway_id}-{config.name}"
        self.broker = f"{config.host}:{config.port}"
        self.status_topic = status_topic(config.topic_prefix, context.gateway_id)
        self._stack: AsyncExitStack | None = None
        self._client: aiomqtt.Client | None = None
        self._watcher: asyncio.Task[None] | None = None
        #: Resolved with the reason when the connection is lost; a fresh future per connection.
        self._lost: asyncio.Future[str] | None = None
        self._log = log.bind(sink=self.name, broker=self.broker)
        self._topics: TopicCache = {}

    @property
    def connected(self) -> bool:
        """True between a successful connect and close or the loss of the connection."""
        return self._client is not None and self._lost is not None and not self._lost.done()

    async def connect(self) -> None:
        """Open a session and publish the birth message; SinkError with one line when that fails."""
        await self.close()
        cfg = self.config
        password = read_secret(self.name, "the broker password", env=cfg.password_env, env_field="password_env",
                               file=cfg.password_file, file_field="password_file")
        tls = (
            tls_context(self.name, ca_file=cfg.ca_file, client_cert=cfg.client_cert, client_key=cfg.client_key,
                        verify=cfg.verify_tls)
            if cfg.tls else None
        )
        if tls is not None:
            tls.sslsocket_class = _ClosingSSLSocket  # this context only: the class's own stays SSLSocket
        online_since = utc_now()
        will = aiomqtt.Will(
            self.status_topic,
            _status("offline", self.gateway_id, None, reason="connection lost", online_since=online_since),
            qos=1,
            retain=True,
        )
        client = aiomqtt.Client(
            cfg.host,
            cfg.port,
            identifier=self.client_id,
            username=cfg.username,
            password=password,
            will=will,
            clean_session=True,
            keepalive=cfg.keepalive_s,
            timeout=cfg.connect_timeout_s,
            max_inflight_messages=cfg.max_inflight,
            tls_context=tls,
            logger=_CLIENT_LOG,
        )
        client.pending_calls_threshold = cfg.max_inflight + 10
        stack = AsyncExitStack()
        try:
            await _open(stack, client)
        except _ClosedBeforeConnack as exc:
            await _abandon(client)
            raise SinkError(self._closed_before_connack(exc.reason)) from exc
        except aiomqtt.MqttError as exc:
            await _abandon(client)
            raise SinkError(self._connect_failure(exc)) from exc
        except BaseException:
            await _abandon(client)
            raise
        client.timeout = cfg.publish_timeout_s
        self._stack, self._client = stack, client
        self._lost = asyncio.get_running_loop().create_future()
        self._watcher = asyncio.create_task(self._watch(client, self._lost), name=f"mqtt-sink-{self.name}-watch")
        try:
            birth = _status("online", self.gateway_id, online_since)
            await client.publish(self.status_topic, birth, qos=1, retain=True)
        except aiomqtt.MqttError as exc:
            await self._drop()
            raise SinkError(f"MQTT broker {self.broker}: connected but the birth message failed: {exc}") from exc
        self._log.info("mqtt sink connected", client_id=self.client_id, status_topic=self.status_topic)

    async def write(self, batch: SinkBatch) -> Sequence[Outcome] | None:
        """Publish in order; accepted for each acknowledged record, retry from the first that was not."""
        client, lost = self._client, self._lost
        if client is None or lost is None:
            raise SinkError(f"MQTT broker {self.broker}: not connected (connect first)")
        if lost.done():
            raise SinkError(f"MQTT broker {self.broker}: connection lost: {lost.result()}")
        records = batch.records
        messages, rejected = plan(records, self.config, self.gateway_id, self._topics)
        outcomes: list[Outcome | None] = [None] * len(records)
        for i, reason in rejected.items():
            outcomes[i] = Outcome.rejected(reason)
        acknowledged: set[int] = set()
        failure = await self._publish_all(client, lost, messages, acknowledged)
        if failure is None:
            return None if not rejected else [o or Outcome.accepted() for o in outcomes]
        first_open = next((m.start for k, m in enumerate(messages) if k not in acknowledged), None)
        if first_open is None:  # the connection went after the last acknowledgement: the next write notices
            return None if not rejected else [o or Outcome.accepted() for o in outcomes]
        if first_open == 0:
            raise SinkError(
                f"MQTT broker {self.broker}: nothing of seq {batch.first_seq}-{batch.last_seq} "
                f"was acknowledged: {failure}"
            )
        self._log.warning("mqtt publish interrupted", acknowledged=first_open, of=len(records), reason=failure)
        retry = Outcome.retry(f"MQTT broker {self.broker}: {failure}")
        return [(outcomes[i] or Outcome.accepted()) if i < first_open else retry for i in range(len(records))]

    async def close(self) -> None:
        """Publish a retained ``offline`` status (when still connected) and disconnect. Idempotent."""
        if self._client is None:
            return
        client = self._client
        if self.connected:
            try:
                offline = _status("offline", self.gateway_id, utc_now(), reason="closed")
                await client.publish(self.status_topic, offline, qos=1, retain=True)
            except aiomqtt.MqttError as exc:
                self._log.warning("mqtt offline status not published", reason=str(exc))
        await self._drop()
        self._log.info("mqtt sink closed")

    async def _publish_all(
        self, client: aiomqtt.Client, lost: asyncio.Future[str], messages: list[Message], done: set[int]
    ) -> str | None:
        """Publish ``messages`` with a window of ``max_inflight``, adding the index of each one the
        broker acknowledged to ``done``; the first failure's reason, or None.

        Publishes start in order (paho queues them on the socket as they are called), so the broker
        receives them in seq order whatever order the acknowledgements come back in. Completions are
        counted in done-callbacks and the loop sleeps on one future at a time: an ``asyncio.wait``
        over the whole window per acknowledgement costs more than the publish itself.
        """
        cfg = self.config
        loop = asyncio.get_running_loop()
        inflight: dict[asyncio.Future[None], int] = {}
        failure: list[str] = []
        wake: list[asyncio.Future[None]] = []

        def notify() -> None:
            if wake and not wake[0].done():
                wake[0].set_result(None)

        def finished(task: asyncio.Future[None]) -> None:
            index = inflight.pop(task, None)
            if index is None or task.cancelled():
                return
            exc = task.exception()
            if exc is None:
                done.add(index)
            elif not failure:
                failure.append(_publish_failure(exc))
            notify()

        def connection_lost(future: asyncio.Future[str]) -> None:
            if not failure:
                failure.append(f"connection lost: {future.result()}")
            notify()

        async def sleep_until_notified() -> None:
            wake[:] = [loop.create_future()]
            await wake[0]

        lost.add_done_callback(connection_lost)
        try:
            for index, message in enumerate(messages):
                while len(inflight) >= cfg.max_inflight and not failure:
                    await sleep_until_notified()
                if failure:
                    break
                publish = client.publish(message.topic, message.payload, qos=cfg.qos, retain=cfg.retain_last)
                task = asyncio.ensure_future(publish)
                inflight[task] = index
                task.add_done_callback(finished)
            while inflight and not failure:
                await sleep_until_notified()
        finally:
            lost.remove_done_callback(connection_lost)
            pending = list(inflight)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        if failure and not lost.done():
            # A timed-out acknowledgement leaves the session in doubt: make the next write fail so
            # the forwarder reconnects instead of publishing behind a stuck broker.
            lost.set_result(failure[0])
        return failure[0] if failure else None

    async def _watch(self, client: aiomqtt.Client, lost: asyncio.Future[str]) -> None:
        """Resolve ``lost`` when the connection drops: aiomqtt's message iterator ends with an error then."""
        try:
            async for _ in client.messages:
                pass  # the sink subscribes to nothing
        except aiomqtt.MqttError as exc:
            cause = exc.__cause__ or exc
            reason = f"the broker or the network closed it ({cause})"
            if not lost.done():
                lost.set_result(reason)
                self._log.warning("mqtt connection lost", reason=reason)

    async def _drop(self) -> None:
        """Stop watching and disconnect (cleanly when the connection still stands)."""
        stack, watcher, lost = self._stack, self._watcher, self._lost
        self._stack = self._client = self._watcher = None
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        if lost is not None and not lost.done():
            lost.set_result("closed")
        if stack is not None:
            try:
                await stack.aclose()
            except aiomqtt.MqttError as exc:
                self._log.warning("mqtt disconnect was not clean", reason=str(exc))

    def _connect_failure(self, exc: aiomqtt.MqttError) -> str:
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text:  # aiomqtt keeps only the text of the ssl error
            reason = _ssl_text(text.partition("certificate verify failed:")[2] or text).rstrip(".")
            hint = "connect by a name the certificate holds" if "mismatch" in reason else "give its CA as ca_file"
            return f"MQTT broker {self.broker}: its certificate is not trusted ({reason}): {hint}"
        if isinstance(exc, aiomqtt.MqttCodeError):
            code = exc.rc.value if isinstance(exc.rc, ReasonCode) else exc.rc
            hint = {
                133: "check client_id: the broker refuses it",
                134: "check username and password_env/password_file",
                135: "check username and password_env/password_file, and that the broker lets this user connect",
            }.get(code, "see the broker's log for why")
            return f"MQTT broker {self.broker} refused the connection: {text} ({hint})"
        if text == "Operation timed out":
            return (
                f"MQTT broker {self.broker} did not accept the connection within {self.config.connect_timeout_s} s "
                "(is it an MQTT broker, starting or overloaded?)"
            )
        if "refused" in text.lower():
            return f"MQTT broker {self.broker} refused the connection: {text} (is it running and listening there?)"
        return f"MQTT broker {self.broker} cannot be reached: {_ssl_text(text)} (check host, port, tls and the network)"

    def _closed_before_connack(self, reason: str) -> str:
        cfg = self.config
        if not cfg.tls:
            hint = " (is it an MQTT port? if it expects TLS, set tls: true)"
        elif cfg.client_cert is None:
            hint = " (if the broker requires mutual TLS, give client_cert and client_key)"
        else:
            hint = " (is client_cert signed by a CA the broker trusts?)"
        return f"MQTT broker {self.broker} closed the connection before accepting it: {reason}{hint}"


class _ClosingSSLSocket(ssl.SSLSocket):
    """A TLS socket that closes itself when its handshake fails.

    paho leaves the socket of a failed handshake (an untrusted broker certificate) to the garbage
    collector, which closes it with a ResourceWarning some time later.
    """

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise  # a non-blocking handshake in progress, not a failure
        except OSError:
            self.close()
            raise


class _ClosedBeforeConnack(aiomqtt.MqttError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _open(stack: AsyncExitStack, client: aiomqtt.Client) -> None:
    """Enter the client; fail as soon as the broker drops the connection before its CONNACK.

    aiomqtt ignores a disconnect before CONNACK and waits out the whole timeout. With TLS 1.3 that is
    how a broker refuses a missing client certificate: its alert comes after the handshake, and paho
    only logs it. So paho's disconnect callback ends the wait, and its last error log gives the reason.
    """
    loop = asyncio.get_running_loop()
    paho = client._client  # private: aiomqtt 2.5 has no public way
    dropped: asyncio.Future[None] = loop.create_future()
    errors: list[str] = []
    answered: list[bool] = []  # a CONNACK came: aiomqtt reports it (a refused login is closed right after)
    aiomqtt_on_connect, aiomqtt_on_disconnect = paho.on_connect, paho.on_disconnect

    def mark_dropped() -> None:
        if not dropped.done():
            dropped.set_result(None)

    def on_connect(*args: Any) -> None:
        answered.append(True)
        aiomqtt_on_connect(*args)

    def on_disconnect(*args: Any) -> None:
        if not answered:
            loop.call_soon_threadsafe(mark_dropped)
        aiomqtt_on_disconnect(*args)

    def on_log(_client: object, _userdata: object, level: int, text: str) -> None:
        if level == paho_mqtt.MQTT_LOG_ERR:
            errors.append(text)

    paho.on_connect, paho.on_disconnect, paho.on_log = on_connect, on_disconnect, on_log
    enter = asyncio.ensure_future(stack.enter_async_context(client))
    try:
        await asyncio.wait({enter, dropped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        paho.on_connect, paho.on_disconnect, paho.on_log = aiomqtt_on_connect, aiomqtt_on_disconnect, None
        if not enter.done():
            enter.cancel()
            await asyncio.gather(enter, return_exceptions=True)
    if not enter.cancelled():
        enter.result()  # connected, or aiomqtt's own error
        return
    reason = errors[-1].removeprefix("failed to receive on socket: ") if errors else "no reason given"
    raise _ClosedBeforeConnack(_ssl_text(reason))


def _ssl_text(text: str) -> str:
    """``[SSL: X] reason (_ssl.c:1006)`` or ``[Errno 104] reason`` as just the reason."""
    text = re.sub(r"^\[(SSL: [A-Z0-9_]+|Errno \d+)\]\s*", "", text.strip())
    return re.sub(r"\s*\(_ssl\.c:\d+\)$", "", text).strip()


async def _abandon(client: aiomqtt.Client) -> None:
    """Close what a failed connect left open.

    When the TCP connection stands but no CONNACK comes (a broker shutting down still completes
    handshakes from its listen backlog), aiomqtt gives up without closing the socket or stopping
    its housekeeping task; both would outlive the sink. Closing paho's socket runs aiomqtt's own
    socket-close hook, which unregisters the socket from the loop.
    """
    client._client._sock_close()  # private: aiomqtt 2.5 has no public way
    misc = client._misc_task
    if misc is not None and not misc.done():
        misc.cancel()
        await asyncio.gather(misc, return_exceptions=True)


def _publish_failure(exc: BaseException) -> str:
    if isinstance(exc, aiomqtt.MqttError) and str(exc) == "Operation timed out":
        return "no acknowledgement in time (publish_timeout_s)"
    return str(exc.__cause__ or exc) if isinstance(exc, aiomqtt.MqttError) else f"{type(exc).__name__}: {exc}"


def _status(status: str, gateway_id: str, time: datetime | None, **more: Any) -> bytes:
    body = {"status": status, "gateway_id": gateway_id, "time": time} | more
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)


