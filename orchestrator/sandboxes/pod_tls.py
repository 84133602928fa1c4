"""Per-pod mutual TLS credentials for sandbox servers on the pod network.

Each sandbox pod gets its own throw-away certificate authority, made in the
orchestrator's memory, which signs exactly two certificates and is then forgotten:

* the pod's server certificate (name :data:`SERVER_NAME`, server auth only), whose key
  goes to the pod; the server reads it and removes the file before any tool runs;
* the orchestrator's client certificate for that pod (client auth only), whose key
  never leaves the orchestrator's memory.

The pod trusts only its own CA for clients and the orchestrator trusts only that CA
for that pod's server, so: nothing on the pod network without the client key can call
a sandbox; a pod whose IP is later reused by another pod cannot be taken for it; and
what the pod holds (its own server key) opens nothing but itself.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

SERVER_NAME = "sandbox.latm.internal"
VALIDITY = datetime.timedelta(days=7)  # longer than any pool keeps a pod (max_idle_s, uses)


@dataclass(frozen=True)
class PodCredentials:
    """PEM bytes: what the pod gets (server key and certificate, the CA) and what the
    orchestrator keeps (its client key and certificate)."""

    ca_cert: bytes
    server_key: bytes = field(repr=False)
    server_cert: bytes
    client_key: bytes = field(repr=False)
    client_cert: bytes

    def pod_files(self) -> dict[str, bytes]:
        """The files of the pod's Secret, named as ``python -m sandbox --tls-dir`` reads them."""
        return {"tls.key": self.server_key, "tls.crt": self.server_cert, "ca.crt": self.ca_cert}


def mint(pod_name: str) -> PodCredentials:
    """New credentials for one pod (EC P-256: a few milliseconds)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"latm pod CA {pod_name}")])
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip

    def leaf(name: str, usage: x509.ObjectIdentifier) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = _builder(subject, ca_name, key.public_key(), now)
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if usage == ExtendedKeyUsageOID.SERVER_AUTH:
            san = x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)])
            builder = builder.add_extension(san, critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        pem_key = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return pem_key, cert.public_bytes(serialization.Encoding.PEM)

    server_key, server_cert = leaf(SERVER_NAME, ExtendedKeyUsageOID.SERVER_AUTH)
    client_key, client_cert = leaf("latm orchestrator", ExtendedKeyUsageOID.CLIENT_AUTH)
    return PodCredentials(
        ca_cert=ca_cert.public_bytes(serialization.Encoding.PEM),
        server_key=server_key,
        server_cert=server_cert,
        client_key=client_key,
        client_cert=client_cert,
    )


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime.datetime,
) -> x509.CertificateBuilder:
    from cryptography import x509

    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )
