"""Apache Kafka, one KRaft node (broker + controller), run from Maven Central jars on the local Java.

Layout: jars in ``~/.cache/fedstream/kafka-jars/<kafka.version>/`` (shared by every state dir, filled
once by ``mvn dependency:copy-dependencies`` on ``infra/kafka/pom.xml``); per state dir
``kafka/server.properties`` (rendered from ``infra/kafka/server.properties``), ``kafka/data`` (the
log dir) and ``kafka/logs/server.log`` (log4j2, configured by ``infra/kafka/log4j2.properties``).

``security="sasl_ssl"`` appends ``infra/kafka/sasl_ssl.properties`` (TLS, SCRAM, ACLs; see
``fedstream.stack.kafka_security``); such a log dir is formatted with its own logins and never mixed
with a plaintext one.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from string import Template

from fedstream.messaging.acls import apply_acls, participant_bindings, participant_user
from fedstream.messaging.logins import KafkaLogin, new_login, read_logins, write_logins
from fedstream.stack.component import Component, log
from fedstream.stack.errors import StackError
from fedstream.stack.kafka_security import (
    MECHANISM,
    OVERLAY_TEMPLATE,
    SecuredKafkaFiles,
    install_platform_acls,
    render_overlay,
    scram_format_args,
    with_admin,
)
from fedstream.stack.process import (
    LOOPBACK,
    ProcessRecord,
    free_port,
    reuse_or_allocate,
    run_tool,
    spawn_detached,
    wait_for_port,
    wait_until_ready,
)

INFRA_DIR = Path(__file__).resolve().parents[3] / "infra" / "kafka"
POM = INFRA_DIR / "pom.xml"
SERVER_TEMPLATE = INFRA_DIR / "server.properties"
LOG4J_CONFIG = INFRA_DIR / "log4j2.properties"

# Why these JVM flags: the embedded broker shares a 2-core laptop or CI runner with the services
# and the tests. The C1 compiler alone and the serial collector start ~1.5 s faster and burn less
# CPU than C2 + G1; the throughput they give up does not matter for a development broker.
JVM_OPTS = (
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
    # CDS warnings about classes it cannot archive are noise, not problems.
    "-Xlog:cds=off,cds+dynamic=off",
)
READY_TIMEOUT_S = 120.0


# --- pure helpers (unit-tested) ----------------------------------------------------------------


def kafka_version(pom: Path = POM) -> str:
    """The Kafka version the pom pins (``<properties><kafka.version>``): it names the jar cache."""
    if not pom.is_file():
        raise StackError(f"{pom} not found: the embedded Apache Kafka runs from a fedstream source checkout")
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom).getroot().find("m:properties/m:kafka.version", ns)
    if node is None or not (node.text or "").strip():
        raise StackError(f"{pom} has no <kafka.version> property")
    return node.text.strip()


def render_server_properties(template: str, *, broker_port: int, controller_port: int, data_dir: Path) -> str:
    return Template(template).substitute(
        broker_port=broker_port, controller_port=controller_port, data_dir=str(data_dir)
    )


def new_cluster_id() -> str:
    """A KRaft cluster id, made as Kafka's ``Uuid.randomUuid()`` makes it (saves a JVM start).

    Base64url of 16 random bytes without padding; Kafka rejects ids that start with "-" (they look
    like command-line flags), so draw again in that case.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fedstream"


def jar_cache_dir(version: str) -> Path:
    return cache_root() / "kafka-jars" / version


def find_java() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(Path(java_home) / "bin" / "java", os.X_OK):
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")


def cds_archive_path(jars: Path, java: str, variant: str = "") -> Path:
    """Where the class-data-sharing archive for this Java lives (an archive only fits the JVM that made it).

    ``variant``: "sasl_ssl" for the secured broker, which loads TLS and SCRAM classes the plaintext one never does."""
    real = Path(java).resolve()
    stat = real.stat()
    key = hashlib.sha1(f"{real}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return jars / f"kafka-cds-{key}{'-' + variant if variant else ''}.jsa"


def java_command(
    java: str, *, jars: Path, main: str, args: list[str], logs_dir: Path, cds: list[str]
) -> list[str]:
    return [
        java,
        *JVM_OPTS,
        *cds,
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        f"-Dkafka.logs.dir={logs_dir}",
        # Kafka's own shutdown hook logs its clean shutdown; log4j must still be up for that.
        "-Dlog4j2.shutdownHookEnabled=false",
        "-cp",
        f"{jars}/*",
        main,
        *args,
    ]


# --- the jar cache -----------------------------------------------------------------------------


def jars_present(jars: Path, version: str) -> bool:
    return (jars / f"kafka_2.13-{version}.jar").is_file()


async def ensure_jars(version: str) -> Path:
    """Resolve the broker's jars with Maven once; later calls find them in the cache."""
    jars = jar_cache_dir(version)
    if jars_present(jars, version):
        return jars
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            f"Apache Kafka {version} jars are not in {jars} and `mvn` is not on PATH to fetch them: "
            "install Maven, or set FEDSTREAM_BROKER=tansu to use the in-memory Tansu broker"
        )
    # Resolve into a private directory and rename it into place, so an interrupted download never
    # leaves a half-filled cache that later runs would trust.
    staging = jars.with_name(f".{version}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    log.info("kafka: fetching Apache Kafka %s jars with Maven (once) into %s", version, jars)
    await run_tool(
        [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
         f"-DoutputDirectory={staging}", "-DincludeScope=runtime"],
        what=f"mvn dependency:copy-dependencies for Apache Kafka {version}",
        timeout_s=900,
    )
    if not jars_present(staging, version):
        raise StackError(f"mvn finished but {staging} has no kafka_2.13-{version}.jar")
    try:
        staging.rename(jars)
    except OSError:
        # Another `up` filled the cache meanwhile: theirs is as good as ours.
        shutil.rmtree(staging, ignore_errors=True)
        if not jars_present(jars, version):
            raise
    return jars


# --- the component -----------------------------------------------------------------------------


async def wait_for_broker(
    bootstrap: str, port: int, *, name: str, record: ProcessRecord, security: dict | None = None
) -> None:
    """Ready = the listener is open (cheap, quiet) and then a metadata request lists a broker."""
    await wait_for_port(port, name=name, record=record, timeout_s=READY_TIMEOUT_S)

    async def metadata_lists_a_broker() -> bool:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **(security or {}))
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            return bool(cluster.get("brokers"))
        finally:
            await admin.close()

    await wait_until_ready(metadata_lists_a_broker, name=name, record=record, timeout_s=READY_TIMEOUT_S)


class ApacheKafka(Component):
    name = "kafka"
    flavour = "kafka"
    # A clean KRaft shutdown (and, the first time, writing the class-data archive) takes a few seconds.
    stop_timeout_s = 60.0

    def __init__(self, state_dir: Path, java: str | None, security: str = "plaintext") -> None:
        # java=None still lets `status` and `down` handle a broker recorded earlier.
        super().__init__(state_dir)
        self.java = java
        self.security = security
        self.version = kafka_version()
        self.jars = jar_cache_dir(self.version)

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def config_path(self) -> Path:
        return self.home / "server.properties"

    @property
    def secured(self) -> SecuredKafkaFiles | None:
        return SecuredKafkaFiles(self.home) if self.security == "sasl_ssl" else None

    @property
    def security_marker(self) -> Path:
        """Which mode the log dir was formatted for: its SCRAM credentials exist only in sasl_ssl."""
        return self.home / "security-mode"

    def kind(self) -> str:
        secured = ", SASL_SSL" if self.security == "sasl_ssl" else ""
        return f"apache-kafka {self.version} (KRaft{secured})"

    async def prepare(self) -> None:
        if self.java is None:
            raise StackError("Apache Kafka needs Java 17+: no `java` on PATH or in JAVA_HOME")
        await ensure_jars(self.version)
        self.home.mkdir(parents=True, exist_ok=True)
        formatted_for = self.security_marker.read_text().strip() if self.security_marker.is_file() else "plaintext"
        if (self.data_dir / "meta.properties").exists() and formatted_for != self.security:
            raise StackError(
                f"{self.data_dir} holds a {formatted_for} broker, but FEDSTREAM_KAFKA_SECURITY={self.security}: "
                "run `fedstream stack down --purge` first (or use another state dir)"
            )
        if self.secured:
            self.secured.prepare()

    async def start(self, previous: ProcessRecord | None) -> ProcessRecord:
        broker_port, controller_port = self._ports(previous)
        internal_port = self._internal_port(previous, broker_port, controller_port)
        self.config_path.write_text(self._server_properties(broker_port, controller_port, internal_port))
        cds, pending_archive = self._cds_flags()
        if self.secured:
            await self._format_secured_if_new()
        else:
            await self._format_if_new(cds)
        argv = java_command(
            self.java, jars=self.jars, main="kafka.Kafka", args=[str(self.config_path)],
            logs_dir=self.home / "logs", cds=cds,
        )
        console_log = self.home / "logs" / "stdout.log"
        pid, created = spawn_detached(argv, log_path=console_log, cwd=self.home)
        return ProcessRecord(
            pid=pid,
            create_time=created,
            kind=self.kind(),
            address=f"{LOOPBACK}:{broker_port}",
            log=str(self.home / "logs" / "server.log"),
            extra={
                "flavour": self.flavour,
                "broker_port": broker_port,
                "controller_port": controller_port,
                "pending_cds_archive": pending_archive,
                "console_log": str(console_log),
                "security": self.security,
                "internal_port": internal_port,
            },
        )

    async def wait_ready(self, record: ProcessRecord) -> None:
        recorded_mode = record.extra.get("security", "plaintext")
        if recorded_mode != self.security:
            raise StackError(
                f"the running broker (pid {record.pid}) is {recorded_mode}, but FEDSTREAM_KAFKA_SECURITY={self.security}: "
                "run `fedstream stack down --purge` first"
            )
        security = self.secured.client_options(self.secured.admin_login()) if self.secured else None
        await wait_for_broker(
            record.address, record.extra["broker_port"], name="Apache Kafka", record=record, security=security
        )

    async def after_ready(self, record: ProcessRecord) -> None:
        if self.secured:
            _, added = self.secured.add_missing_platform_logins()
            for login in added:  # roles new since the format: their credentials go in now
                await self._set_scram_credential(record, login)
            await install_platform_acls(record.address, self.secured)

    async def add_participant(self, record: ProcessRecord, participant_id: str) -> KafkaLogin:
        """Give one participant its own SCRAM login and ACLs on the running secured broker.

        Idempotent: a participant that has a login keeps it (its password is set again, which is
        harmless). The credential goes in with Kafka's ConfigCommand (a JVM start, ~1.5 s), the ACLs
        with the admin client."""
        if not self.secured:
            raise StackError("participant logins exist only on a FEDSTREAM_KAFKA_SECURITY=sasl_ssl stack")
        files = self.secured
        username = participant_user(participant_id)
        login = read_logins(files.logins_path).get(username) or new_login(username)
        await self._set_scram_credential(record, login)
        write_logins(files.logins_path, {**read_logins(files.logins_path), username: login})
        await with_admin(record.address, files, lambda admin: apply_acls(admin, participant_bindings(participant_id)))
        return login

    async def _set_scram_credential(self, record: ProcessRecord, login: KafkaLogin) -> None:
        # The password goes in a private file, not on the command line, which every local user can read.
        with self.secured.private_file(f"{MECHANISM}=password={login.password}\n") as config_file:
            argv = java_command(
                self.java, jars=self.jars, main="kafka.admin.ConfigCommand",
                args=["--bootstrap-server", record.address, "--command-config", str(self.secured.admin_config),
                      "--alter", "--entity-type", "users", "--entity-name", login.username,
                      "--add-config-file", str(config_file)],
                logs_dir=self.home / "logs", cds=self._tool_cds(),
            )
            await run_tool(argv, what=f"kafka ConfigCommand (SCRAM login for {login.username})", cwd=self.home, timeout_s=120)

    def endpoint_fields(self) -> dict[str, str]:
        """Security fields for the endpoints file (none for plaintext)."""
        return self.secured.endpoint_fields() if self.secured else {}

    def after_stop(self, record: ProcessRecord) -> None:
        # The JVM wrote the class-data archive while exiting cleanly; publish it for the next start.
        pending = record.extra.get("pending_cds_archive")
        if self.java and pending and Path(pending).is_file() and Path(pending).stat().st_size > 0:
            variant = "" if record.extra.get("security", "plaintext") == "plaintext" else record.extra["security"]
            Path(pending).replace(cds_archive_path(self.jars, self.java, variant))

    # --- helpers ---

    def _ports(self, previous: ProcessRecord | None) -> tuple[int, int]:
        # Clients know the broker port; keep both across restarts (and a broker port Tansu had)
        # unless something else took them meanwhile.
        extra = previous.extra if previous is not None else {}
        broker_port = reuse_or_allocate(extra.get("broker_port"))
        controller_port = reuse_or_allocate(extra.get("controller_port"))
        while controller_port == broker_port:
            controller_port = free_port()
        return broker_port, controller_port

    def _internal_port(self, previous: ProcessRecord | None, *taken: int) -> int | None:
        """The broker-to-broker (mutual TLS) listener's port; plaintext mode has none."""
        if not self.secured:
            return None
        port = reuse_or_allocate((previous.extra if previous else {}).get("internal_port"))
        while port in taken:
            port = free_port()
        return port

    def _server_properties(self, broker_port: int, controller_port: int, internal_port: int | None) -> str:
        text = render_server_properties(
            SERVER_TEMPLATE.read_text(), broker_port=broker_port, controller_port=controller_port, data_dir=self.data_dir
        )
        if self.secured and internal_port is not None:
            text += "\n" + render_overlay(
                OVERLAY_TEMPLATE.read_text(), broker_port=broker_port, internal_port=internal_port,
                controller_port=controller_port, tls=self.secured.tls,
            )
        return text

    async def _format_secured_if_new(self) -> None:
        """Format this log dir itself, not from the shared template: the bootstrap metadata carries the
        state dir's own SCRAM credentials (one JVM start, only in sasl_ssl mode)."""
        if (self.data_dir / "meta.properties").exists():
            return
        logins = self.secured.prepare()
        argv = java_command(
            self.java, jars=self.jars, main="kafka.tools.StorageTool",
            args=["format", "-t", new_cluster_id(), "-c", str(self.config_path), *scram_format_args(list(logins.values()))],
            logs_dir=self.home / "logs", cds=self._tool_cds(),
        )
        await run_tool(argv, what="kafka StorageTool format (sasl_ssl)", cwd=self.home, timeout_s=120)
        self.security_marker.write_text(f"{self.security}\n")

    def _cds_flags(self) -> tuple[list[str], str | None]:
        """Class-data sharing: a JVM start ~40% faster from an archive of Kafka's loaded classes.

        The first broker run records the archive when it exits (on `down`); every later start maps it.
        The archive is written under a private name and published in `after_stop`, so a concurrent
        stack never maps a half-written file.
        """
        archive = cds_archive_path(self.jars, self.java, self._cds_variant)
        if archive.is_file():
            return [f"-XX:SharedArchiveFile={archive}"], None
        pending = archive.with_name(f".{archive.name}.{uuid.uuid4().hex[:8]}.tmp")
        return [f"-XX:ArchiveClassesAtExit={pending}"], str(pending)

    @property
    def _cds_variant(self) -> str:
        return self.security if self.secured else ""

    def _tool_cds(self) -> list[str]:
        """A tool (StorageTool, ConfigCommand) maps an existing archive of either mode, never dumps one:
        an archive dumped at a tool's exit would hold the tool's classes only."""
        for variant in (self._cds_variant, ""):
            archive = cds_archive_path(self.jars, self.java, variant)
            if archive.is_file():
                return [f"-XX:SharedArchiveFile={archive}"]
        return []

    async def _format_if_new(self, cds: list[str]) -> None:
        """A KRaft log dir must be formatted once, with a cluster id, before the broker's first start.

        Formatting is a JVM start of its own (~2 s on a small machine), and the test suites make a
        fresh state dir per session. So the tool formats a template once per Kafka version, and each
        new log dir is a copy of it with fresh ids: what `format` writes for a static quorum (the
        bootstrap metadata records and meta.properties) depends on nothing else.
        """
        if (self.data_dir / "meta.properties").exists():
            return
        template = await self._formatted_template(cds)
        staging = self.data_dir.with_name(".data.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(template, staging)
        meta = staging / "meta.properties"
        meta.write_text(with_fresh_ids(meta.read_text(), cluster_id=new_cluster_id(), directory_id=new_cluster_id()))
        staging.rename(self.data_dir)

    async def _formatted_template(self, cds: list[str]) -> Path:
        template = cache_root() / "kafka-kraft-template" / self.version
        if (template / "meta.properties").is_file():
            return template
        staging = template.with_name(f".{self.version}.{os.getpid()}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        config = staging / "format.properties"
        # The ports are not part of what is formatted (static voters live in server.properties).
        config.write_text(
            render_server_properties(
                SERVER_TEMPLATE.read_text(), broker_port=9092, controller_port=9093, data_dir=staging / "data"
            )
        )
        # Only map an existing class-data archive: one dumped at the tool's exit would hold its classes only.
        tool_cds = [flag for flag in cds if flag.startswith("-XX:SharedArchiveFile")]
        argv = java_command(
            self.java, jars=self.jars, main="kafka.tools.StorageTool",
            args=["format", "-t", new_cluster_id(), "-c", str(config)],
            logs_dir=staging, cds=tool_cds,
        )
        await run_tool(argv, what="kafka StorageTool format", cwd=staging, timeout_s=120)
        try:
            (staging / "data").rename(template)
        except OSError:
            if not (template / "meta.properties").is_file():
                raise
        shutil.rmtree(staging, ignore_errors=True)
        return template


def with_fresh_ids(meta_properties: str, *, cluster_id: str, directory_id: str) -> str:
    """meta.properties of the template with this log dir's own cluster.id and directory.id."""
    fresh = {"cluster.id": cluster_id, "directory.id": directory_id}
    lines, seen = [], set()
    for line in meta_properties.splitlines():
        key = line.split("=", 1)[0].strip()
        if key in fresh:
            line = f"{key}={fresh[key]}"
            seen.add(key)
        lines.append(line)
    if seen != set(fresh):
        raise StackError(f"unexpected meta.properties from kafka StorageTool (no {set(fresh) - seen}):\n{meta_properties}")
    return "\n".join(lines) + "\n"
