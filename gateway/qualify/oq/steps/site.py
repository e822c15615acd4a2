"""The case's own site file: a resolved copy in its folder (placeholders filled, no ``simulators:``
section), client certificates made for it, and edits between runs as an engineer would make them."""

from __future__ import annotations

import asyncio
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from asyncua.crypto.cert_gen import dump_private_key_as_pem, generate_private_key, setup_self_signed_certificate
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.config import LoadedSite, YamlDocument, load_site, substitute
from gateway.errors import ConfigError
from gateway.plugins import adapter_plugins
from gateway.simulators import ENDPOINT_ATTRS

_OWN_PLACEHOLDER = re.compile(
    r"\$\{(work|site_dir|pki\.[A-Za-z0-9_-]+\.(?:cert|key)|sim\.[A-Za-z0-9._-]+?\.certificate)\}"
)


async def client_certificate(directory: Path, name: str) -> dict[str, str]:
    """A self-signed OPC UA client key + certificate (DER) for the case, made fresh in its folder."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    key, cert = directory / f"{name}_key.pem", directory / f"{name}_cert.der"
    await setup_self_signed_certificate(
        key, cert, f"urn:cgt-gateway:oq:{name}", socket.gethostname(), [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"countryName": "DE", "organizationName": "cgt-gateway OQ", "commonName": name},
    )
    return {"cert": str(cert), "key": str(key)}


def expired_client_certificate(directory: Path, name: str) -> dict[str, str]:
    """A client key + certificate (DER) like :func:`client_certificate`'s, whose validity ended a day ago.

    Made here rather than by asyncua's helper, which renews any certificate it finds expired.
    """
    directory.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = directory / f"{name}_key.pem", directory / f"{name}_cert.der"
    key = generate_private_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cgt-gateway OQ")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=366))
        .not_valid_after(now - timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"urn:cgt-gateway:oq:{name}"),
                                                    x509.DNSName(socket.gethostname())]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=True,
                                     data_encipherment=True, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(dump_private_key_as_pem(key))
    cert_path.write_bytes(cert.public_bytes(Encoding.DER))
    return {"cert": str(cert_path), "key": str(key_path)}


def resolve_site(site_file: Path, work_dir: Path, sims: dict[str, Any],
                 pki: dict[str, dict[str, str]]) -> tuple[Path, LoadedSite]:
    """Write the case's copy of ``site_file`` as ``site.yaml`` in ``work_dir``; its path and the loaded site."""
    doc = YamlDocument(site_file)
    data = dict(doc.data)
    data.pop("simulators", None)
    data = _substitute_own(data, site_file, work_dir, sims, pki)
    endpoints = {name: {a: getattr(sim, a, None) for a in ENDPOINT_ATTRS} for name, sim in sims.items()}
    data = substitute(data, endpoints)
    api = data.get("api")
    if isinstance(api, dict) and api.get("users_file"):  # the site's users, wherever the copy is written
        api["users_file"] = str((site_file.parent / str(api["users_file"])).resolve())
    work_dir.mkdir(parents=True, exist_ok=True)
    resolved = work_dir / "site.yaml"
    resolved.write_text(yaml.safe_dump(data, sort_keys=False))
    return resolved, load_site(resolved, adapter_plugins())


def _substitute_own(data: Any, site_file: Path, work_dir: Path, sims: dict[str, Any],
                    pki: dict[str, dict[str, str]]) -> Any:
    """The runner's own placeholders: ``${work}`` (the case's folder), ``${site_dir}`` (the folder of the site
    file as shipped, for files kept beside it, e.g. a password file), ``${pki.NAME.cert|key}`` (a client
    pair the case made) and ``${sim.NAME.certificate}`` (the server certificate a secure simulator shows)."""
    if isinstance(data, dict):
        return {k: _substitute_own(v, site_file, work_dir, sims, pki) for k, v in data.items()}
    if isinstance(data, list):
        return [_substitute_own(v, site_file, work_dir, sims, pki) for v in data]
    if not isinstance(data, str) or "${" not in data:
        return data

    def value(match: re.Match[str]) -> str:
        what = match.group(1)
        if what == "work":
            return str(work_dir)
        if what == "site_dir":
            return str(site_file.parent.resolve())
        kind, name, attr = what.split(".")
        if kind == "pki":
            if name not in pki:
                raise ConfigError(f"{site_file}: placeholder {match.group(0)} names no pki client of the case")
            return pki[name][attr]
        sim = sims.get(name)
        path = getattr(sim, "certificate_path", None) if sim is not None else None
        if path is None:
            raise ConfigError(f"{site_file}: placeholder {match.group(0)} names no secure simulator")
        return str(path)

    return _OWN_PLACEHOLDER.sub(value, data)


def edit_site(resolved: Path, changes: dict[str, Any]) -> LoadedSite:
    """Change the case's site file in place (the next start reads it), as an engineer would."""
    data = yaml.safe_load(resolved.read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    resolved.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_site(resolved, adapter_plugins())  # a broken edit is the protocol's mistake: say so now
