"""A locally generated certificate authority for the HTTPS simulators (Entra ID, Dataverse).

msal refuses ``http://`` authorities, so the Microsoft simulators speak HTTPS. :func:`local_ca` creates a
throw-away CA and a server certificate for ``localhost`` / ``127.0.0.1`` in a directory (fresh keys every
time; nothing is committed). Clients trust ``ca.pem`` explicitly (``verify=ca.pem``, ``trust_env=False``);
TLS verification is never switched off.

    tls = local_ca(tmp_dir)
    SimulatorServer(app, ssl_context=tls.server_context()).start()
    requests.Session().get(url, verify=tls.ca_path)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class LocalTLS:
    directory: Path
    #: the CA certificate clients trust (PEM)
    ca_path: Path
    #: the server certificate followed by its private key (PEM)
    server_pem_path: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.server_pem_path))
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_path))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def local_ca(directory: str | os.PathLike[str] | None = None, *, days: int = 30) -> LocalTLS:
    """Create a CA and a ``localhost``/``127.0.0.1`` server certificate in ``directory`` (a new temporary
    directory when None). Private keys are written with mode 0600."""
    folder = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="sandbox-tls-"))
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_cert = (
        x509.CertificateBuilder().subject_name(_name("Marketing Actions sandbox CA")).issuer_name(
            _name("Marketing Actions sandbox CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    srv_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    srv_cert = (
        x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca_cert.subject)
        .public_key(srv_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = folder / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server_pem = folder / "server.pem"
    server_pem.touch(mode=0o600)
    server_pem.write_bytes(srv_cert.public_bytes(serialization.Encoding.PEM) + srv_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return LocalTLS(directory=folder, ca_path=ca_path, server_pem_path=server_pem)


def self_signed_client_certificate(common_name: str = "marketing-actions-client", *,
                                   days: int = 30) -> tuple[str, str]:
    """A key pair and self-signed certificate for client-certificate authentication (app registrations
    accept uploaded self-signed certificates). Returns ``(private_key_pem, certificate_pem)``."""
    now = dt.datetime.now(dt.timezone.utc)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
