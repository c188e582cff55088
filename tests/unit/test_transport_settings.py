"""Transport security settings: what the Kafka, PostgreSQL and Redis clients are actually given."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest
from asyncpg.connect_utils import SSLMode, _parse_connect_dsn_and_args
from pydantic import SecretStr
from redis import ConnectionPool, SSLConnection

from fedstream.connection_security import postgres_url, redis_url, uses_tls
from fedstream.messaging.kafka import KafkaSecurityError, client_security, security_options
from fedstream.messaging.logins import KafkaLogin, read_logins, write_logins
from fedstream.settings import Endpoints, StackSettings, write_endpoints
from fedstream.stack.kafka_security import service_login_env
from fedstream.stack.tls import ensure_tls_files

ENDPOINTS = dict(
    kafka_bootstrap_servers="k:9093", database_url="postgresql://svc@db:5432/fedstream",
    redis_url="redis://cache:6379/0", blob_store_url="file:///b",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("FEDSTREAM_") or name.startswith("KAFKA_"):
            monkeypatch.delenv(name)


@pytest.fixture
def ca_file(tmp_path):
    return ensure_tls_files(tmp_path / "tls").ca_cert


# --- Kafka ----------------------------------------------------------------------------------------


def test_plaintext_kafka_gets_no_tls_and_no_login():
    assert client_security(Endpoints(**ENDPOINTS)) == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_kafka_gets_scram_and_a_context_that_checks_the_broker(ca_file):
    endpoints = Endpoints(
        **ENDPOINTS, kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_username="service.ingestion", kafka_password=SecretStr("pw"), kafka_ca_file=str(ca_file),
    )
    options = client_security(endpoints)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("service.ingestion", "pw")
    context = options["ssl_context"]
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "fedstream local CA"),),)]


def test_sasl_without_a_login_is_refused_before_connecting():
    with pytest.raises(KafkaSecurityError, match="FEDSTREAM_KAFKA_USERNAME"):
        security_options("SASL_SSL")


def test_an_unknown_security_protocol_is_refused():
    with pytest.raises(KafkaSecurityError, match="expected one of"):
        security_options("TLS")


def test_settings_from_the_environment_reach_the_endpoints(monkeypatch, tmp_path, ca_file):
    monkeypatch.setenv("FEDSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("FEDSTREAM_KAFKA_USERNAME", "service.registry")
    monkeypatch.setenv("FEDSTREAM_KAFKA_PASSWORD", "s3cret")
    monkeypatch.setenv("FEDSTREAM_KAFKA_CA_FILE", str(ca_file))
    endpoints = StackSettings(state_dir=tmp_path, **ENDPOINTS).resolved()
    assert endpoints.kafka_security_protocol == "SASL_SSL"
    assert endpoints.kafka_username == "service.registry"
    assert endpoints.kafka_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(endpoints)
    assert client_security(endpoints)["sasl_mechanism"] == "SCRAM-SHA-512"


def test_a_secured_local_stack_gives_unconfigured_tools_its_admin_login(tmp_path, ca_file):
    logins = tmp_path / "kafka" / "kafka-logins.json"
    write_logins(logins, {"fedstream-admin": KafkaLogin("fedstream-admin", "adminpw")})
    write_endpoints(StackSettings(state_dir=tmp_path).endpoints_path(), {
        **ENDPOINTS, "kafka_flavour": "kafka", "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_ca_file": str(ca_file),
        "kafka_logins_file": str(logins), "kafka_local_user": "fedstream-admin",
    })
    endpoints = StackSettings(state_dir=tmp_path).resolved()
    assert (endpoints.kafka_security_protocol, endpoints.kafka_ca_file) == ("SASL_SSL", str(ca_file))
    assert endpoints.kafka_username == "fedstream-admin"
    assert endpoints.kafka_password.get_secret_value() == "adminpw"


def test_the_supervisor_hands_each_service_its_own_login(tmp_path):
    logins = tmp_path / "kafka" / "kafka-logins.json"
    write_logins(logins, {"service.ingestion": KafkaLogin("service.ingestion", "ingpw")})
    write_endpoints(tmp_path / "endpoints.json", {**ENDPOINTS, "kafka_logins_file": str(logins)})
    env = {"FEDSTREAM_STATE_DIR": str(tmp_path)}
    assert service_login_env("ingestion", env) == {
        "FEDSTREAM_KAFKA_USERNAME": "service.ingestion", "FEDSTREAM_KAFKA_PASSWORD": "ingpw"
    }
    assert service_login_env("registry", env) == {}  # no login of its own: nothing invented
    assert service_login_env("ingestion", {**env, "FEDSTREAM_KAFKA_USERNAME": "prod"}) == {}  # explicit wins


def test_the_logins_file_is_private(tmp_path):
    path = tmp_path / "logins.json"
    write_logins(path, {"a": KafkaLogin("a", "pw")})
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_logins(path) == {"a": KafkaLogin("a", "pw")}
    assert "pw" not in repr(read_logins(path)["a"])


# --- PostgreSQL -----------------------------------------------------------------------------------


def _asyncpg_params(url: str):
    addrs, params = _parse_connect_dsn_and_args(
        dsn=url, host=None, port=None, user=None, password=None, passfile=None, database=None, ssl=None,
        direct_tls=None, server_settings=None, target_session_attrs=None, krbsrvname=None, gsslib=None,
        service=None, servicefile=None,
    )
    return params


def test_postgres_with_a_ca_verifies_the_server_fully(ca_file):
    url = postgres_url("postgresql://svc@db.internal:5432/fedstream", password="p@ss/word", ca_file=ca_file)
    params = _asyncpg_params(url)
    assert params.user == "svc" and params.password == "p@ss/word" and params.database == "fedstream"
    assert params.sslmode is SSLMode.verify_full
    assert params.ssl.verify_mode is ssl.CERT_REQUIRED and params.ssl.check_hostname
    assert uses_tls(url)


def test_postgres_settings_are_folded_into_the_resolved_url(monkeypatch, tmp_path, ca_file):
    monkeypatch.setenv("FEDSTREAM_DATABASE_PASSWORD", "dbpw")
    monkeypatch.setenv("FEDSTREAM_DATABASE_CA_FILE", str(ca_file))
    url = StackSettings(state_dir=tmp_path, **ENDPOINTS).resolved().database_url
    assert _asyncpg_params(url).password == "dbpw"
    assert f"sslrootcert={ca_file}".replace("/", "%2F") in url


def test_postgres_url_without_security_settings_is_unchanged():
    url = "postgresql://u@127.0.0.1:5/db?application_name=x"
    assert postgres_url(url) == url
    assert not uses_tls(url)


# --- Redis ----------------------------------------------------------------------------------------


def test_redis_with_a_ca_uses_tls_and_an_acl_user(ca_file):
    url = redis_url("redis://cache.internal:6380/0", username="ingestion", password="r:pw", ca_file=ca_file)
    pool = ConnectionPool.from_url(url)
    kwargs = pool.connection_kwargs
    assert pool.connection_class is SSLConnection
    assert (kwargs["username"], kwargs["password"]) == ("ingestion", "r:pw")
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("cache.internal", 6380, 0)
    assert kwargs["ssl_ca_certs"] == str(ca_file)
    assert kwargs["ssl_cert_reqs"] == "required" and kwargs["ssl_check_hostname"] is True
    assert uses_tls(url)


def test_redis_settings_are_folded_into_the_resolved_url(monkeypatch, tmp_path, ca_file):
    monkeypatch.setenv("FEDSTREAM_REDIS_USERNAME", "svc")
    monkeypatch.setenv("FEDSTREAM_REDIS_PASSWORD", "redispw")
    monkeypatch.setenv("FEDSTREAM_REDIS_CA_FILE", str(ca_file))
    url = StackSettings(state_dir=tmp_path, **ENDPOINTS).resolved().redis_url
    kwargs = ConnectionPool.from_url(url).connection_kwargs
    assert url.startswith("rediss://")
    assert (kwargs["username"], kwargs["password"]) == ("svc", "redispw")


def test_a_password_only_redis_url_keeps_its_scheme():
    url = redis_url("redis://127.0.0.1:6379/0", password="pw")
    assert url.startswith("redis://:pw@")
    assert ConnectionPool.from_url(url).connection_kwargs["password"] == "pw"


def test_endpoints_file_never_holds_a_password(tmp_path):
    """What `stack up` records is addresses and where logins live, not the secrets themselves."""
    from fedstream.stack.kafka_security import SecuredKafkaFiles

    fields = SecuredKafkaFiles(tmp_path).endpoint_fields()
    assert "password" not in json.dumps(fields)


def test_a_secured_local_redis_password_reaches_the_resolved_url(tmp_path):
    password_file = tmp_path / "redis" / "password"
    password_file.parent.mkdir()
    password_file.write_text("localpw\n")
    write_endpoints(StackSettings(state_dir=tmp_path).endpoints_path(), {
        **ENDPOINTS, "redis_url": "redis://127.0.0.1:6379/0", "redis_password_file": str(password_file),
    })
    url = StackSettings(state_dir=tmp_path).resolved().redis_url
    assert ConnectionPool.from_url(url).connection_kwargs["password"] == "localpw"
    # an explicitly given Redis is not the local one: its password is not guessed from the file
    other = StackSettings(state_dir=tmp_path, redis_url="redis://elsewhere:6379/0").resolved().redis_url
    assert ConnectionPool.from_url(other).connection_kwargs.get("password") is None


def test_an_explicit_broker_ignores_the_local_stacks_security(tmp_path, ca_file):
    write_endpoints(StackSettings(state_dir=tmp_path).endpoints_path(), {
        **ENDPOINTS, "kafka_security_protocol": "SASL_SSL", "kafka_ca_file": str(ca_file),
    })
    endpoints = StackSettings(state_dir=tmp_path, kafka_bootstrap_servers="other:9092").resolved()
    assert endpoints.kafka_security_protocol == "PLAINTEXT" and endpoints.kafka_ca_file is None


def test_the_redis_password_goes_in_a_config_file_not_on_the_command_line(tmp_path):
    from fedstream.stack.redis import redis_command

    argv = redis_command(Path("/bin/redis-server"), port=1, data_dir=tmp_path, config=tmp_path / "secured.conf")
    assert argv[1] == str(tmp_path / "secured.conf")  # redis-server reads a config file only as its first argument
    assert not any("requirepass" in a for a in argv)


def test_urls_are_redacted_for_display():
    from fedstream.connection_security import redacted

    assert redacted("redis://:s3cret@127.0.0.1:1/0") == "redis://:***@127.0.0.1:1/0"
    assert redacted("postgresql://u:p%40ss@db:5432/x?sslmode=verify-full") == "postgresql://u:***@db:5432/x?sslmode=verify-full"
    assert redacted("redis://127.0.0.1:1/0") == "redis://127.0.0.1:1/0"
