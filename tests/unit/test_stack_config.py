"""The embedded stack's server configurations, rendered without starting anything."""

import base64
from pathlib import Path

import pytest

from fedstream.stack import StackError
from fedstream.stack.kafka import (
    SERVER_TEMPLATE,
    cds_archive_path,
    ensure_jars,
    jar_cache_dir,
    java_command,
    kafka_version,
    new_cluster_id,
    render_server_properties,
    with_fresh_ids,
)
from fedstream.stack.postgres import database_url, postgres_command
from fedstream.stack.redis import redis_command, redis_url
from fedstream.stack.tansu import tansu_command


def rendered(data_dir=Path("/state/kafka/data")) -> dict[str, str]:
    text = render_server_properties(
        SERVER_TEMPLATE.read_text(), broker_port=41001, controller_port=41002, data_dir=data_dir
    )
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def test_server_properties_is_one_kraft_node_on_loopback():
    props = rendered()
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:41002"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:41001,CONTROLLER://127.0.0.1:41002"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:41001"
    assert props["log.dirs"] == "/state/kafka/data"


def test_server_properties_fit_a_single_broker_and_explicit_topics():
    props = rendered()
    assert props["auto.create.topics.enable"] == "false"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["min.insync.replicas"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_every_placeholder_is_filled():
    assert "$" not in "".join(rendered().values())


def test_kafka_version_comes_from_the_pom():
    assert kafka_version() == "4.1.1"


def test_a_pom_without_the_version_property_is_a_stack_error(tmp_path):
    pom = tmp_path / "pom.xml"
    pom.write_text('<project xmlns="http://maven.apache.org/POM/4.0.0"><properties/></project>')
    with pytest.raises(StackError, match="kafka.version"):
        kafka_version(pom)


def test_cluster_ids_are_kafka_uuids():
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cluster_id in ids:
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_a_copied_log_dir_gets_its_own_ids():
    template = "#\n#Fri Dec 04\nnode.id=1\ndirectory.id=OLDDIR\nversion=1\ncluster.id=OLDCLUSTER\n"
    fresh = with_fresh_ids(template, cluster_id="NEWCLUSTER", directory_id="NEWDIR")
    assert "cluster.id=NEWCLUSTER" in fresh and "directory.id=NEWDIR" in fresh
    assert "OLD" not in fresh and "node.id=1" in fresh and "version=1" in fresh


def test_meta_properties_without_ids_is_a_stack_error():
    with pytest.raises(StackError, match="meta.properties"):
        with_fresh_ids("node.id=1\n", cluster_id="a", directory_id="b")


def test_the_broker_runs_from_the_jar_cache_with_file_logging(tmp_path):
    argv = java_command(
        "/usr/bin/java", jars=tmp_path / "jars", main="kafka.Kafka", args=["server.properties"],
        logs_dir=tmp_path / "logs", cds=["-XX:SharedArchiveFile=x.jsa"],
    )
    assert argv[0] == "/usr/bin/java"
    assert argv[-3:] == [f"{tmp_path / 'jars'}/*", "kafka.Kafka", "server.properties"]
    assert "-XX:SharedArchiveFile=x.jsa" in argv
    assert f"-Dkafka.logs.dir={tmp_path / 'logs'}" in argv
    assert any(a.startswith("-Dlog4j2.configurationFile=") and a.endswith("log4j2.properties") for a in argv)
    assert any(a.startswith("-Xmx") for a in argv)


def test_the_class_data_archive_is_per_java(tmp_path):
    java_a, java_b = tmp_path / "a", tmp_path / "b"
    java_a.write_text("a")
    java_b.write_text("bb")
    assert cds_archive_path(tmp_path, str(java_a)) != cds_archive_path(tmp_path, str(java_b))
    assert cds_archive_path(tmp_path, str(java_a)).parent == tmp_path


def test_tansu_listens_and_advertises_the_same_loopback_port():
    argv = tansu_command("/bin/tansu", 41003)
    assert argv[:2] == ["/bin/tansu", "broker"]
    assert argv[argv.index("--listener-url") + 1] == "tcp://127.0.0.1:41003"
    assert argv[argv.index("--advertised-listener-url") + 1] == "tcp://127.0.0.1:41003"
    assert argv[argv.index("--storage-engine") + 1] == "memory://tansu/"


def test_postgres_listens_on_loopback_tcp_only(tmp_path):
    argv = postgres_command(tmp_path / "bin", tmp_path / "data", 41004)
    settings = {argv[i + 1] for i, a in enumerate(argv) if a == "-c"}
    assert {"port=41004", "listen_addresses=127.0.0.1", "unix_socket_directories="} <= settings
    assert argv[argv.index("-D") + 1] == str(tmp_path / "data")


def test_database_url_names_the_fedstream_database_and_user():
    assert database_url(41005) == "postgresql://fedstream@127.0.0.1:41005/fedstream"


def test_redis_binds_loopback_without_an_append_only_file(tmp_path):
    argv = redis_command(Path("/bin/redis-server"), port=41006, data_dir=tmp_path)
    options = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert options["--bind"] == "127.0.0.1"
    assert options["--port"] == "41006"
    assert options["--appendonly"] == "no"
    assert options["--dir"] == str(tmp_path)
    assert redis_url(41006) == "redis://127.0.0.1:41006/0"


# --- the jar cache ---


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def fake_mvn(directory: Path, script: str) -> None:
    directory.mkdir(exist_ok=True)
    mvn = directory / "mvn"
    mvn.write_text(f"#!/bin/sh\n{script}\n")
    mvn.chmod(0o755)


async def test_jars_already_cached_need_no_maven(empty_cache, monkeypatch):
    jars = jar_cache_dir("4.1.1")
    jars.mkdir(parents=True)
    (jars / "kafka_2.13-4.1.1.jar").write_text("")
    monkeypatch.setenv("PATH", str(empty_cache / "nothing-here"))
    assert await ensure_jars("4.1.1") == jars


async def test_no_maven_and_no_jars_says_what_to_do(empty_cache, monkeypatch):
    monkeypatch.setenv("PATH", str(empty_cache / "nothing-here"))
    with pytest.raises(StackError, match="FEDSTREAM_BROKER=tansu"):
        await ensure_jars("4.1.1")


async def test_a_failing_maven_shows_the_end_of_its_output(empty_cache, monkeypatch):
    fake_mvn(empty_cache / "bin", 'echo "[ERROR] Could not resolve org.apache.kafka:kafka_2.13"; exit 1')
    monkeypatch.setenv("PATH", str(empty_cache / "bin"))
    with pytest.raises(StackError, match="exit 1(.|\n)*Could not resolve"):
        await ensure_jars("4.1.1")
    assert not jar_cache_dir("4.1.1").exists()  # nothing half-filled left to trust


async def test_maven_fills_the_cache_through_a_staging_dir(empty_cache, monkeypatch):
    # The fake copies a "jar" into whatever -DoutputDirectory it is given.
    fake_mvn(
        empty_cache / "bin",
        'for a; do case "$a" in -DoutputDirectory=*) d="${a#-DoutputDirectory=}";; esac; done\n'
        'mkdir -p "$d" && touch "$d/kafka_2.13-4.1.1.jar"',
    )
    monkeypatch.setenv("PATH", f"{empty_cache / 'bin'}:/usr/bin:/bin")
    jars = await ensure_jars("4.1.1")
    assert (jars / "kafka_2.13-4.1.1.jar").is_file()
    assert [p.name for p in jars.parent.iterdir()] == ["4.1.1"]
