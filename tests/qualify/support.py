"""Site files and certificates for the qualification tests, and the command line as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: A site without simulators or devices: what IQ and the baseline look at is the installation itself.
SITE = """\
gateway: {id: gw-iq}
journal: {path: journal/journal.sqlite, quota_mb: 10, min_free_mb: 1}
equipment: []
"""


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def write_site(folder: Path, text: str = SITE, name: str = "site.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def write_certificate(path: Path, *, not_before: datetime, not_after: datetime, name: str = "mes-ca") -> Path:
    """A self-signed PEM certificate valid from ``not_before`` to ``not_after``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def days(n: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=n)
