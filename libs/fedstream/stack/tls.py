"""A private certificate authority and a loopback server certificate for the embedded stack's TLS.

`fedstream stack up` in ``sasl_ssl`` mode makes one CA per state dir and signs one certificate for
127.0.0.1/localhost with it; clients trust only that CA (``ca.pem``), so nothing else on the machine
can pose as the broker. Keys are written 0600. Production brings its own PKI; this is for loopback.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fedstream.stack.private_files import write_private

LOOPBACK_NAMES = ("localhost",)
LOOPBACK_IPS = ("127.0.0.1", "::1")
VALIDITY = dt.timedelta(days=825)  # the longest lifetime common TLS clients accept for a leaf
# Kafka maps a TLS client certificate to the principal "User:<subject DN>"; the broker's own
# controller and inter-broker connections authenticate with this certificate.
SERVER_COMMON_NAME = "fedstream-broker"


@dataclass(frozen=True)
class TlsFiles:
    """Where a state dir keeps its CA and server identity (PEM)."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca-key.pem"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server-key.pem"

    @property
    def server_keystore(self) -> Path:
        """Key then certificate chain in one PEM file: Kafka's ``ssl.keystore.type=PEM`` layout."""
        return self.directory / "server-keystore.pem"

    def complete(self) -> bool:
        return all(p.is_file() for p in (self.ca_cert, self.ca_key, self.server_cert, self.server_key, self.server_keystore))


def server_principal() -> str:
    return f"User:CN={SERVER_COMMON_NAME}"


def ensure_tls_files(directory: Path) -> TlsFiles:
    """Make the CA and the loopback server certificate once per state dir (idempotent)."""
    files = TlsFiles(directory)
    if files.complete():
        return files
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    ca_key, ca_cert = new_ca()
    key, cert = new_server_cert(ca_key, ca_cert)
    write_private(files.ca_key, private_pem(ca_key))
    write_private(files.server_key, private_pem(key))
    write_private(files.server_keystore, private_pem(key) + cert_pem(cert) + cert_pem(ca_cert))
    _write_public(files.server_cert, cert_pem(cert))
    _write_public(files.ca_cert, cert_pem(ca_cert))  # last: complete() means every file is there
    return files


# --- pure helpers (unit-tested) ----------------------------------------------------------------


def new_ca(common_name: str = "fedstream local CA") -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    # P-256: every TLS stack (the JVM's, OpenSSL's) speaks it, and it is much cheaper to make than RSA.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def new_server_cert(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    *,
    common_name: str = SERVER_COMMON_NAME,
    dns_names: tuple[str, ...] = LOOPBACK_NAMES,
    ips: tuple[str, ...] = LOOPBACK_IPS,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A leaf for loopback, good as a TLS server and (for the broker's own internal links) as a client."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    san = [x509.DNSName(n) for n in dns_names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # PKCS#8: the only private-key encoding Kafka's PEM keystore reads.
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
