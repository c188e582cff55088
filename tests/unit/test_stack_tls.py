"""The local stack's CA, loopback certificate and sasl_ssl broker configuration."""

from __future__ import annotations

import asyncio
import ssl
from string import Template

import pytest
from cryptography import x509

from fedstream.messaging.logins import KafkaLogin
from fedstream.stack.errors import StackError
from fedstream.stack.kafka_security import (
    OVERLAY_TEMPLATE,
    admin_client_properties,
    choose_security,
    platform_usernames,
    render_overlay,
    scram_format_args,
    super_users,
)
from fedstream.stack.tls import TlsFiles, ensure_tls_files
from schemas.topics import SERVICES


def test_tls_files_are_made_once_with_private_keys(tmp_path):
    files = ensure_tls_files(tmp_path / "tls")
    assert files.complete()
    for key in (files.ca_key, files.server_key, files.server_keystore):
        assert key.stat().st_mode & 0o777 == 0o600
    first = files.ca_cert.read_bytes()
    assert ensure_tls_files(tmp_path / "tls").ca_cert.read_bytes() == first  # kept, not remade


def test_the_server_certificate_names_loopback_and_is_signed_by_the_ca(tmp_path):
    files = ensure_tls_files(tmp_path / "tls")
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}


async def test_a_tls_client_trusting_the_ca_completes_a_handshake_with_the_certificate(tmp_path):
    """The files work together for a real handshake on loopback, with host name checking on."""
    files = ensure_tls_files(tmp_path / "tls")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(files.server_cert, files.server_key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readexactly(4))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        client_ctx = ssl.create_default_context(cafile=str(files.ca_cert))
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        writer.close()
        untrusting = ssl.create_default_context()
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection("127.0.0.1", port, ssl=untrusting)
    finally:
        server.close()
        await server.wait_closed()


def test_the_overlay_fills_every_placeholder_and_denies_by_default(tmp_path):
    tls = TlsFiles(tmp_path)
    text = render_overlay(OVERLAY_TEMPLATE.read_text(), broker_port=1, internal_port=2, controller_port=3, tls=tls)
    assert "$" not in text.replace("${", "")  # nothing left unsubstituted
    props = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert props["listeners"] == "CLIENTS://127.0.0.1:1,INTERNAL://127.0.0.1:2,CONTROLLER://127.0.0.1:3"
    assert props["listener.security.protocol.map"] == "CLIENTS:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["ssl.keystore.location"] == str(tls.server_keystore)
    assert props["super.users"] == super_users() == "User:fedstream-admin;User:CN=fedstream-broker"
    Template(OVERLAY_TEMPLATE.read_text())  # a valid template


def test_the_platform_has_an_admin_a_login_per_service_and_an_operator():
    names = platform_usernames()
    assert names[0] == "fedstream-admin"
    assert {f"service.{s}" for s in SERVICES} | {"operator"} <= set(names)
    assert len(names) == len(set(names))


def test_scram_arguments_for_the_storage_format():
    args = scram_format_args([KafkaLogin("a", "pa"), KafkaLogin("b", "pb")])
    assert args == ["--add-scram", "SCRAM-SHA-512=[name=a,password=pa]", "--add-scram", "SCRAM-SHA-512=[name=b,password=pb]"]


def test_the_admin_tool_config_logs_in_over_tls(tmp_path):
    text = admin_client_properties(KafkaLogin("fedstream-admin", "pw"), tmp_path / "ca.pem")
    assert "security.protocol=SASL_SSL" in text
    assert 'username="fedstream-admin" password="pw"' in text
    assert f"ssl.truststore.location={tmp_path / 'ca.pem'}" in text


def test_security_mode_is_validated():
    assert choose_security(" SASL_SSL ") == "sasl_ssl"
    with pytest.raises(StackError, match="plaintext, sasl_ssl"):
        choose_security("tls")


def test_the_secured_broker_has_its_own_class_data_archive(tmp_path):
    from fedstream.stack.kafka import cds_archive_path

    java = tmp_path / "java"
    java.write_text("")
    plain, secured = cds_archive_path(tmp_path, str(java)), cds_archive_path(tmp_path, str(java), "sasl_ssl")
    assert plain != secured and plain.parent == secured.parent == tmp_path
    assert secured.name.endswith("-sasl_ssl.jsa")
