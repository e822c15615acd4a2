"""One OPC UA client session: connect (with security and trust), resolve the map, read, close.

Every asyncua call of the adapter goes through here, and every library exception is translated
here into a gateway error naming the equipment and the endpoint. asyncua's own reconnect is off
(``auto_reconnect=False``): a lost session is reported once, and the supervisor builds a fresh
adapter with a fresh session. That keeps asyncua's Republish gap filler, which spins forever against
an asyncua server, from ever running.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import structlog
from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from adapters.opcua.batch import ResolvedPoint
from adapters.opcua.config import OpcUaEquipmentConfig
from adapters.opcua.errors import SetupError
from adapters.opcua.nodemap import NodeMap
from adapters.opcua.status import MISSING_NODE_CODES, status_name
from gateway.errors import CommunicationError, DeviceReportedError, DeviceTimeout

T = TypeVar("T")
#: What asyncua raises when a call fails: a Bad status, a closed or refused socket, a timeout.
LIBRARY_ERRORS: tuple[type[BaseException], ...] = (ua.UaError, OSError)

#: What a server answers at ActivateSession when it does not accept who the gateway says it is.
_LOGIN_REFUSED = frozenset({
    ua.StatusCodes.BadIdentityTokenRejected, ua.StatusCodes.BadIdentityTokenInvalid, ua.StatusCodes.BadUserAccessDenied,
})

_LIMITS = {
    "translate": ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerTranslateBrowsePathsToNodeIds,
    "read": ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
    "monitor": ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall,
}


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """``items`` in slices of at most ``size`` (0: the server states no limit, one slice)."""
    if size <= 0 or size >= len(items):
        return [items] if items else []
    return [items[i : i + size] for i in range(0, len(items), size)]


def certificate_der(path: Path) -> bytes:
    """A certificate file (DER or PEM) as DER bytes, for a byte-exact trust comparison."""
    data = path.read_bytes()
    if b"-----BEGIN CERTIFICATE-----" in data:
        return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
    return first_certificate(data)


def first_certificate(der: bytes) -> bytes:
    """The first certificate of a DER chain (an endpoint's ServerCertificate may carry the chain)."""
    if len(der) < 2 or der[0] != 0x30:
        return der
    if der[1] < 0x80:
        return der[: 2 + der[1]]
    n = der[1] & 0x7F
    return der[: 2 + n + int.from_bytes(der[2 : 2 + n], "big")]


def application_uri(der: bytes) -> str | None:
    """The URI in a certificate's SubjectAlternativeName (an OPC UA application certificate has one)."""
    try:
        san = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (ValueError, x509.ExtensionNotFound):
        return None
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def thumbprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def out_of_validity(der: bytes, now: datetime) -> str | None:
    """Why a certificate is not valid at ``now`` ("expired on ...", "not valid before ..."), else None."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None  # not ours to judge: the security layer refuses what it cannot parse
    if now > cert.not_valid_after_utc:
        return f"expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC"
    if now < cert.not_valid_before_utc:
        return f"not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC"
    return None


class Session:
    """The adapter's link to one server. ``open`` once, ``close`` any number of times."""

    def __init__(self, equipment: OpcUaEquipmentConfig, node_map: NodeMap) -> None:
        self.eq = equipment
        self.map = node_map
        self.log = structlog.get_logger("adapters.opcua").bind(equipment_id=equipment.id, endpoint=equipment.endpoint)
        self.client: Client | None = None
        self.limits: dict[str, int] = {}
        self.namespace_index: int | None = None
        #: Why the session died (set by asyncua's watchdog through connection_lost_callback).
        self.lost: str | None = None
        self._connected = False

    def error(self, message: str, exc: BaseException | None = None) -> CommunicationError:
        """A CommunicationError naming equipment and endpoint, with the library's words when there are any;
        a DeviceTimeout when the server did not answer within the equipment's timeout."""
        if isinstance(exc, ua.UaStatusCodeError):
            message = f"{message}: {status_name(exc.code)}"
        elif exc is not None:
            message = f"{message}: {type(exc).__name__}{f' {exc}' if str(exc) else ''}"
        if isinstance(exc, TimeoutError):
            return DeviceTimeout(f"{message} (no answer within {self.eq.timeout_s:g} s)",
                                 equipment_id=self.eq.id, address=self.eq.endpoint)
        return CommunicationError(message, equipment_id=self.eq.id, address=self.eq.endpoint)

    async def call(self, what: str, make: Callable[[], Awaitable[T]]) -> T:
        """One service call with the equipment's timeout, library errors translated."""
        try:
            async with asyncio.timeout(self.eq.timeout_s):
                return await make()
        except LIBRARY_ERRORS as exc:
            raise self.error(f"{what} failed", exc) from exc

    async def open(self) -> None:
        """Connect, check the server's certificate, activate the session, learn namespace and limits."""
        client = Client(self.eq.endpoint, timeout=self.eq.timeout_s, watchdog_intervall=self.eq.watchdog_interval_s)
        client.connection_lost_callback = self._on_lost
        self.client = client
        await self._secure(client)
        try:
            await self.call("connect", lambda: client.connect(auto_reconnect=False))
        except CommunicationError as exc:
            cause = exc.__cause__
            if isinstance(cause, ua.UaStatusCodeError) and cause.code in _LOGIN_REFUSED:
                who = "the anonymous login" if self.eq.security.username is None else \
                    f"user {self.eq.security.username!r}"
                hint = "it wants a user: set username and password_env or password_file" \
                    if self.eq.security.username is None else "check the user name and its password"
                raise SetupError(f"the server refused {who} ({status_name(cause.code)}): {hint}",
                                 equipment_id=self.eq.id, address=self.eq.endpoint) from exc
            raise
        self._connected = True
        self.log.info("opcua session open", security=self.eq.security.policy)
        try:
            self.namespace_index = await self.call(
                "namespace lookup", lambda: client.get_namespace_index(self.map.namespace_uri)
            )
        except ValueError as exc:  # asyncua: the URI is not in the server's NamespaceArray
            raise DeviceReportedError(
                f"the server has no namespace {self.map.namespace_uri!r} (node map {self.map.name})",
                equipment_id=self.eq.id,
                address=self.eq.endpoint,
            ) from exc
        await self._read_limits(client)

    async def _on_lost(self, exc: Exception) -> None:
        self.lost = f"session lost: {type(exc).__name__}{f' {exc}' if str(exc) else ''}"

    async def _read_limits(self, client: Client) -> None:
        ids = [ua.NodeId(i, 0) for i in _LIMITS.values()]
        results = await self.call(
            "reading operation limits", lambda: client.uaclient.read_attributes(ids, ua.AttributeIds.Value)
        )
        for key, dv in zip(_LIMITS, results, strict=True):
            good = dv.StatusCode is None or dv.StatusCode.is_good()
            value = dv.Value.Value if good and dv.Value is not None else 0
            self.limits[key] = int(value) if isinstance(value, int) else 0
        self.log.debug("opcua operation limits", **self.limits)

    async def _secure(self, client: Client) -> None:
        sec = self.eq.security
        if sec.username is not None:
            client.set_user(sec.username)
            client.set_password(self._password())
        if sec.policy == "None":
            return
        own = self._own_certificate()
        mode = ua.MessageSecurityMode.SignAndEncrypt if sec.mode == "SignAndEncrypt" else ua.MessageSecurityMode.Sign
        endpoints = await self.call("listing endpoints", client.connect_and_get_server_endpoints)
        try:
            endpoint = Client.find_endpoint(endpoints, mode, SecurityPolicyBasic256Sha256.URI)
        except ua.UaError as exc:
            raise SetupError(
                f"the server offers no Basic256Sha256 {sec.mode} endpoint",
                equipment_id=self.eq.id,
                address=self.eq.endpoint,
            ) from exc
        server_der = first_certificate(endpoint.ServerCertificate or b"")
        print_ = thumbprint(server_der)
        trusted = {thumbprint(certificate_der(p)) for p in sec.trusted_server_certificates}
        if print_ not in trusted:
            if not sec.trust_on_first_use:
                raise SetupError(
                    f"server certificate sha256:{print_} is not in trusted_server_certificates: refusing to connect",
                    equipment_id=self.eq.id,
                    address=self.eq.endpoint,
                )
            self.log.warning(
                "TRUSTING AN UNVERIFIED SERVER CERTIFICATE (trust_on_first_use); pin it in trusted_server_certificates",
                thumbprint=f"sha256:{print_}",
            )
        invalid = out_of_validity(server_der, datetime.now(UTC))
        if invalid is not None:  # pinned or not, a certificate past its validity vouches for nothing now
            raise SetupError(
                f"server certificate sha256:{print_} {invalid}: refusing to connect",
                equipment_id=self.eq.id,
                address=self.eq.endpoint,
            )
        try:
            uri = application_uri(own)
            if uri is not None:  # the session must present the URI its certificate names
                client.application_uri = uri
            await client.set_security(
                SecurityPolicyBasic256Sha256,
                str(sec.client_certificate),
                str(sec.client_private_key),
                server_certificate=server_der,
                mode=mode,
            )
        except (ua.UaError, OSError, ValueError) as exc:
            raise SetupError(
                f"cannot use the client certificate or key: {exc}", equipment_id=self.eq.id, address=self.eq.endpoint
            ) from exc

    def _own_certificate(self) -> bytes:
        """The gateway's client certificate (DER); SetupError when it cannot be read or is out of its validity
        (a server would refuse it with BadCertificateTimeInvalid: this names the file to renew)."""
        path = self.eq.security.client_certificate
        assert path is not None
        try:
            der = certificate_der(path)
        except (OSError, ValueError) as exc:
            raise SetupError(
                f"cannot use the client certificate or key: {exc}", equipment_id=self.eq.id, address=self.eq.endpoint
            ) from exc
        invalid = out_of_validity(der, datetime.now(UTC))
        if invalid is not None:
            raise SetupError(
                f"client certificate {path} {invalid}: renew it", equipment_id=self.eq.id, address=self.eq.endpoint
            )
        return der

    def _password(self) -> str:
        sec = self.eq.security
        if sec.password_env is not None:
            value = os.environ.get(sec.password_env)
            if value is None:
                raise SetupError(
                    f"environment variable {sec.password_env} (password_env) is not set",
                    equipment_id=self.eq.id,
                    address=self.eq.endpoint,
                )
            return value
        assert sec.password_file is not None
        try:
            return sec.password_file.read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError) as exc:
            raise SetupError(
                f"cannot read password_file {sec.password_file}", equipment_id=self.eq.id, address=self.eq.endpoint
            ) from exc

    def source(self, address: str) -> str:
        return f"{self.eq.server_address}/ns={self.map.namespace_uri};{address}"

    async def resolve(self) -> list[ResolvedPoint]:
        """Every map point with this session's NodeId; a path the server lacks is marked, not fatal."""
        client, ns = self._client(), self.namespace_index
        assert ns is not None
        resolved = [ResolvedPoint(p, self.source(p.address)) for p in self.map.points.values()]
        by_path = [rp for rp in resolved if rp.point.browse_path is not None]
        for rp in resolved:
            if rp.point.node_id is not None:
                rp.node_id = ua.NodeId.from_string(f"ns={ns};{rp.point.node_id}")
        for part in chunks(by_path, self.limits.get("translate", 0)):
            paths = [
                ua.RelativePath.from_string("/" + "/".join(f"{ns}:{s}" for s in rp.point.address.split("/")))
                for rp in part
            ]
            results = await self.call(
                "translating browse paths",
                lambda paths=paths: client.translate_browsepaths(client.nodes.objects.nodeid, paths),
            )
            for rp, result in zip(part, results, strict=True):
                code = result.StatusCode.value
                if result.StatusCode.is_good() and result.Targets:
                    rp.node_id = result.Targets[0].TargetId
                else:
                    rp.problem = code if code & 0xFFFF0000 in MISSING_NODE_CODES else code or ua.StatusCodes.BadNoMatch
        return resolved

    async def read(self, points: Sequence[ResolvedPoint]) -> list[ua.DataValue]:
        """Current values of ``points`` (usable ones), chunked by the server's MaxNodesPerRead."""
        client = self._client()
        out: list[ua.DataValue] = []
        for part in chunks(points, self.limits.get("read", 0)):
            ids = [rp.node_id for rp in part]
            params = ua.ReadParameters()
            params.TimestampsToReturn = ua.TimestampsToReturn.Both
            for nid in ids:
                rv = ua.ReadValueId()
                rv.NodeId = nid
                rv.AttributeId = ua.AttributeIds.Value
                params.NodesToRead.append(rv)
            out.extend(await self.call("reading values", lambda params=params: client.uaclient.read(params)))
        return out

    def _client(self) -> Client:
        if self.client is None:
            raise self.error("the session is closed")
        return self.client

    async def close(self) -> None:
        """Disconnect and forget the client; safe to call twice and after a failed open."""
        client, self.client = self.client, None
        if client is None:
            return
        connected, self._connected = self._connected, False
        try:
            async with asyncio.timeout(self.eq.timeout_s):
                await client.disconnect()
        except LIBRARY_ERRORS as exc:  # the link is already gone: nothing left to release on our side
            self.log.info("opcua disconnect incomplete", error=repr(exc))
        if connected:
            self.log.info("opcua session closed")
