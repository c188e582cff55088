"""Which PostgreSQL login each process gets: the owner (migrations, tooling) or an application login (the
services, the admin API), with its password; the local stack's generated logins and its pg_hba rules."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
from pathlib import Path

import pytest

from fedstream.settings import Endpoints, ServiceSettings, StackSettings
from fedstream.stack.postgres import API_LOGIN, APP_LOGIN, PostgreSQL, hba_rules
from fedstream.stack.process import ProcessRecord
from fedstream.storage.postgres import scram_verifier

COMMON = {"kafka_bootstrap_servers": "k:9092", "redis_url": "redis://r:6379/0", "blob_store_url": "file:///b"}
OWNER = "postgresql://fedstream@127.0.0.1:5555/fedstream"


@pytest.fixture(autouse=True)
def no_fedstream_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in [k for k in os.environ if k.startswith("FEDSTREAM_")]:
        monkeypatch.delenv(key)


def local_stack(state_dir: Path, logins: dict[str, str]) -> None:
    """What `fedstream stack up` records: the owner's URL, the logins' URLs, the 0600 file of their passwords."""
    logins_file = state_dir / "postgres" / "logins.json"
    logins_file.parent.mkdir(parents=True)
    logins_file.write_text(json.dumps(logins))
    (state_dir / "endpoints.json").write_text(json.dumps({
        **COMMON, "kafka_flavour": "kafka", "database_url": OWNER,
        "app_database_url": f"postgresql://{APP_LOGIN}@127.0.0.1:5555/fedstream",
        "api_database_url": f"postgresql://{API_LOGIN}@127.0.0.1:5555/fedstream",
        "database_logins_file": str(logins_file),
    }))


def test_the_local_stack_gives_the_owner_and_two_logins_with_their_passwords(tmp_path: Path) -> None:
    local_stack(tmp_path, {APP_LOGIN: "app-secret", API_LOGIN: "api/secret"})
    endpoints = StackSettings(state_dir=tmp_path).resolved()
    assert endpoints.database_url == OWNER  # trusted on loopback: no password
    assert endpoints.app_database_url == f"postgresql://{APP_LOGIN}:app-secret@127.0.0.1:5555/fedstream"
    assert endpoints.api_database_url == f"postgresql://{API_LOGIN}:api%2Fsecret@127.0.0.1:5555/fedstream"
    assert endpoints.login_urls == (endpoints.app_database_url, endpoints.api_database_url)


def test_an_explicit_owner_url_ignores_the_local_stacks_logins(tmp_path: Path) -> None:
    local_stack(tmp_path, {APP_LOGIN: "app-secret", API_LOGIN: "api-secret"})
    settings = StackSettings(state_dir=tmp_path, database_url="postgresql://owner@db:5432/fedstream",
                             database_password="owner-secret")
    endpoints = settings.resolved()
    # One login for all, as before application logins existed: nothing to set, nothing of the local stack's.
    assert endpoints.database_url == endpoints.app_database_url == endpoints.api_database_url == \
        "postgresql://owner:owner-secret@db:5432/fedstream"
    assert endpoints.login_urls == ()


def test_a_service_container_holds_only_the_application_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDSTREAM_KAFKA_BOOTSTRAP_SERVERS", "k:9092")
    monkeypatch.setenv("FEDSTREAM_REDIS_URL", "redis://r:6379/0")
    monkeypatch.setenv("FEDSTREAM_APP_DATABASE_URL", "postgresql://fedstream_app@db:5432/fedstream")
    monkeypatch.setenv("FEDSTREAM_APP_DATABASE_PASSWORD", "p@ss word")
    monkeypatch.setenv("FEDSTREAM_DATABASE_CA_FILE", "/run/secrets/db-ca.pem")
    monkeypatch.setenv("FEDSTREAM_STATE_DIR", str(tmp_path))
    endpoints = ServiceSettings.load().resolved()
    expected = ("postgresql://fedstream_app:p%40ss%20word@db:5432/fedstream"
                "?sslmode=verify-full&sslrootcert=%2Frun%2Fsecrets%2Fdb-ca.pem")
    assert endpoints.app_database_url == expected
    assert endpoints.database_url == endpoints.api_database_url == expected
    assert endpoints.login_urls == ()


def test_the_migrate_job_gets_the_owner_and_the_logins_to_set(tmp_path: Path) -> None:
    settings = StackSettings(
        state_dir=tmp_path, database_url="postgresql://owner:o@db/fedstream",
        app_database_url="postgresql://fedstream_app@db/fedstream", app_database_password="a",
        api_database_url="postgresql://fedstream_api@db/fedstream", api_database_password="b",
    )
    assert settings.resolved_database() == {
        "database_url": "postgresql://owner:o@db/fedstream",
        "app_database_url": "postgresql://fedstream_app:a@db/fedstream",
        "api_database_url": "postgresql://fedstream_api:b@db/fedstream",
    }


def test_endpoints_built_by_hand_use_one_login_for_all() -> None:
    endpoints = Endpoints(**COMMON, database_url=OWNER)
    assert endpoints.app_database_url == endpoints.api_database_url == OWNER
    assert endpoints.login_urls == ()


def test_the_local_stack_generates_private_logins_once(tmp_path: Path) -> None:
    postgres = PostgreSQL(tmp_path)
    assert postgres.endpoint_fields() == {}  # never started: nothing to record
    postgres.run_dir.write("postgres", ProcessRecord(pid=1, create_time=0.0, kind="postgresql", address=OWNER,
                                                     log="", extra={"port": 5555}))
    fields = postgres.endpoint_fields()
    assert fields["app_database_url"] == f"postgresql://{APP_LOGIN}@127.0.0.1:5555/fedstream"
    assert fields["api_database_url"] == f"postgresql://{API_LOGIN}@127.0.0.1:5555/fedstream"
    logins_file = Path(fields["database_logins_file"])
    assert stat.S_IMODE(logins_file.stat().st_mode) == 0o600
    first = json.loads(logins_file.read_text())
    assert set(first) == {APP_LOGIN, API_LOGIN} and all(len(p) >= 32 for p in first.values())
    assert first[APP_LOGIN] != first[API_LOGIN]
    postgres.endpoint_fields()
    assert json.loads(logins_file.read_text()) == first  # kept: the cluster holds these passwords
    assert all(password not in json.dumps(fields) for password in first.values())  # the endpoints file holds no secret


def test_the_application_logins_need_a_password_before_anyone_is_trusted() -> None:
    rules = [line.split() for line in hba_rules().splitlines() if line and not line.startswith("#")]
    assert rules[0] == ["host", "all", f"{APP_LOGIN},{API_LOGIN}", "127.0.0.1/32", "scram-sha-256"]
    assert all(rule[-1] == "trust" for rule in rules[1:])  # the first matching line wins


# RFC 7677 §3: the SCRAM-SHA-256 exchange of user "user", password "pencil".
RFC_SALT = "W22ZaJ0SNY7soEsUEjb6gQ=="
RFC_AUTH_MESSAGE = (b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
                    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
                    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
RFC_CLIENT_PROOF = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
RFC_SERVER_SIGNATURE = "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_the_scram_verifier_accepts_the_rfc_7677_exchange() -> None:
    """What the server checks with the stored keys: the RFC's client proof, and it signs as the RFC's server."""
    verifier = scram_verifier("pencil", salt=base64.b64decode(RFC_SALT), iterations=4096)
    assert verifier.startswith(f"SCRAM-SHA-256$4096:{RFC_SALT}$")
    stored_key, server_key = (base64.b64decode(k) for k in verifier.rsplit("$", 1)[1].split(":"))
    client_signature = hmac.new(stored_key, RFC_AUTH_MESSAGE, hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(base64.b64decode(RFC_CLIENT_PROOF), client_signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key
    assert base64.b64encode(hmac.new(server_key, RFC_AUTH_MESSAGE, hashlib.sha256).digest()).decode() == RFC_SERVER_SIGNATURE
    assert scram_verifier("pencil") != scram_verifier("pencil")  # a fresh salt each time
    with pytest.raises(ValueError, match="ASCII"):
        scram_verifier("pässword")
