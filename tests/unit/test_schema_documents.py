"""The committed JSON Schemas and AsyncAPI document: fresh, valid, and faithful to the code."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator
from pydantic import ValidationError

from fedstream.messaging import codec
from schemas import events as ev
from schemas import generate
from schemas.base import BlobRef, Event
from schemas.topics import ALL_TOPICS, topic_for

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "run: python -m schemas.generate"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict[str, Any]]:
    return generate.json_schemas()


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    return yaml.safe_load((ROOT / generate.ASYNCAPI_FILE).read_text(encoding="utf-8"))


# --- freshness -------------------------------------------------------------------------------------


def test_committed_documents_match_the_code() -> None:
    fresh = generate.rendered_files()
    stale = [str(p) for p, text in fresh.items() if _read(ROOT / p) != text]
    assert not stale, f"stale generated documents {stale}; {REGENERATE}"


def test_no_schema_file_is_left_from_a_removed_type() -> None:
    committed = {p.name for p in (ROOT / generate.JSON_SCHEMA_DIR).glob("*.json")}
    assert committed == set(generate.json_schemas()), REGENERATE


def test_write_all_reproduces_the_committed_tree(tmp_path: Path) -> None:
    (tmp_path / generate.JSON_SCHEMA_DIR).mkdir(parents=True)
    (tmp_path / generate.JSON_SCHEMA_DIR / "io.fedstream.gone.v1.json").write_text("{}")
    written = generate.write_all(tmp_path)
    assert {p.relative_to(tmp_path) for p in written} == set(generate.rendered_files())
    assert not (tmp_path / generate.JSON_SCHEMA_DIR / "io.fedstream.gone.v1.json").exists()
    for path in written:
        assert path.read_text(encoding="utf-8") == _read(ROOT / path.relative_to(tmp_path)), REGENERATE


def test_generation_is_deterministic() -> None:
    assert generate.rendered_files() == generate.rendered_files()


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


# --- JSON Schema -----------------------------------------------------------------------------------


def test_one_schema_per_message_type(schemas: dict[str, dict[str, Any]]) -> None:
    types = {m.TYPE for t in ALL_TOPICS for m in t.messages}
    assert set(schemas) == {f"{t}.json" for t in types}


def test_every_schema_is_valid_draft_2020_12(schemas: dict[str, dict[str, Any]]) -> None:
    for name, schema in schemas.items():
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == generate.JSON_SCHEMA_DIALECT, name


def test_schema_names_its_type_and_matches_the_codec_dataschema(schemas: dict[str, dict[str, Any]]) -> None:
    for event in _samples():
        schema = schemas[f"{event.TYPE}.json"]
        assert schema["title"] == type(event).__name__
        assert schema["x-cloudevents-type"] == event.TYPE
        # A consumer in another language finds the schema from the ce_dataschema header alone.
        assert codec.encode(event, topic_for(type(event)).name).header("ce_dataschema") == schema["$id"]


def _blob(n: int) -> BlobRef:
    return BlobRef(uri=f"file:///blobs/{n}", sha256=f"{n:064x}", size=2048)


def _samples() -> list[Event]:
    common = {"federation_id": "fed-1", "time": T0, "event_id": uuid4()}
    return [
        ev.RoundOpened(
            source="registry", round=1, model_version=0, global_model=_blob(1), participants=("site-a", "site-b"),
            quorum=2, deadline=T0 + timedelta(minutes=1), local_epochs=1, learning_rate=0.1, batch_size=32, **common,
        ),
        ev.UpdateSubmitted(
            source="site-a", update_id=uuid4(), participant_id="site-a", round=1, base_model_version=0,
            update=_blob(2), num_examples=120, train_loss=0.61, **common,
        ),
        ev.UpdateRejected(
            source="ingestion", update_id=uuid4(), participant_id="Not An Id", round=0,
            reason=ev.RejectionReason.NOT_ENROLLED, detail="site-z is not enrolled", **common,
        ),
        ev.EvaluationReported(
            source="site-a", participant_id="site-a", round=1, candidate_sha256="c" * 64, num_examples=40,
            loss=0.2, accuracy=0.8, auc=None, **common,
        ),
        ev.ModelRejected(
            source="validation", round=1, candidate=_blob(3), gate=ev.ValidationGate.NO_EVALUATIONS,
            detail="nobody evaluated", **common,
        ),
    ]


@pytest.mark.parametrize("event", _samples(), ids=lambda e: type(e).__name__)
def test_a_real_event_validates_against_its_schema(event: Event, schemas: dict[str, dict[str, Any]]) -> None:
    validator = Draft202012Validator(schemas[f"{event.TYPE}.json"], format_checker=Draft202012Validator.FORMAT_CHECKER)
    validator.validate(event.model_dump(mode="json"))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"surprise": 1}, "extra fields are refused (data minimisation)"),
        ({"round": 0}, "round numbers start at 1"),
        ({"global_model": {"uri": "x", "sha256": "not-hex", "size": 1}}, "hashes are 64 hex digits"),
        ({"federation_id": "Jane Doe"}, "ids are opaque identifiers"),
    ],
)
def test_schema_refuses_what_the_model_refuses(change: dict[str, Any], why: str, schemas: dict[str, dict[str, Any]]) -> None:
    payload = _samples()[0].model_dump(mode="json") | change
    with pytest.raises(ValidationError):  # the premise: the model itself refuses this payload
        ev.RoundOpened.model_validate_json(json.dumps(payload))
    errors = list(Draft202012Validator(schemas[f"{ev.RoundOpened.TYPE}.json"]).iter_errors(payload))
    assert errors, why


# --- AsyncAPI --------------------------------------------------------------------------------------


def test_asyncapi_version_and_info(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["info"]["title"] and asyncapi["info"]["version"]


def test_a_channel_for_every_topic(asyncapi: dict[str, Any]) -> None:
    by_address = {c["address"]: c for c in asyncapi["channels"].values()}
    assert set(by_address) == {t.name for t in ALL_TOPICS}
    for topic in ALL_TOPICS:
        channel = by_address[topic.name]
        assert channel["description"] == topic.description
        assert channel["bindings"]["kafka"]["topic"] == topic.name
        assert channel["bindings"]["kafka"]["partitions"] == topic.partitions


def test_every_message_class_is_on_its_topics_channel(asyncapi: dict[str, Any]) -> None:
    by_address = {c["address"]: c for c in asyncapi["channels"].values()}
    for topic in ALL_TOPICS:
        for cls in topic.messages:
            ref = by_address[topic.name]["messages"][cls.__name__]["$ref"]
            message = _resolve(asyncapi, ref)
            assert message["x-cloudevents-type"] == cls.TYPE
            assert _resolve(asyncapi, message["payload"]["$ref"])["title"] == cls.__name__


def test_every_ref_in_the_document_resolves(asyncapi: dict[str, Any]) -> None:
    refs = list(_refs(asyncapi))
    assert refs, "the document should reference its components"
    for ref in refs:
        _resolve(asyncapi, ref)


def test_every_operation_references_an_existing_channel_and_its_messages(asyncapi: dict[str, Any]) -> None:
    for op_id, op in asyncapi["operations"].items():
        assert op["action"] in ("send", "receive"), op_id
        channel_ref = op["channel"]["$ref"]
        channel = _resolve(asyncapi, channel_ref)
        assert op["messages"], op_id
        for message in op["messages"]:
            # AsyncAPI 3: an operation's messages must be messages of its own channel.
            assert message["$ref"].startswith(channel_ref + "/messages/"), op_id
            assert message["$ref"].rsplit("/", 1)[1] in channel["messages"], op_id


def test_operations_match_producers_and_consumers(asyncapi: dict[str, Any]) -> None:
    addresses = {f"#/channels/{cid}": c["address"] for cid, c in asyncapi["channels"].items()}
    documented = {(op["x-role"], op["action"], addresses[op["channel"]["$ref"]]) for op in asyncapi["operations"].values()}
    expected = {(p, "send", t.name) for t in ALL_TOPICS for p in t.producers}
    expected |= {(c, "receive", t.name) for t in ALL_TOPICS for c in t.consumers}
    assert documented == expected
    assert len(asyncapi["operations"]) == len(expected)


def test_messages_declare_the_headers_and_key_the_codec_writes(asyncapi: dict[str, Any]) -> None:
    for event in _samples():
        record = codec.encode(event, topic_for(type(event)).name)
        message = asyncapi["components"]["messages"][type(event).__name__]
        headers = {name: value.decode() for name, value in record.headers}
        assert set(headers) == set(message["headers"]["properties"])
        Draft7Validator(message["headers"], format_checker=Draft7Validator.FORMAT_CHECKER).validate(headers)
        Draft7Validator(message["bindings"]["kafka"]["key"]).validate(record.key.decode())


def test_dead_letter_message_declares_the_headers_the_consumer_adds(asyncapi: dict[str, Any]) -> None:
    from fedstream.messaging.transaction import Transaction

    original = codec.encode(_samples()[0], "fedstream.rounds")
    tx: Transaction[None] = Transaction(repo=None, consumer="registry")
    tx.dead_letter(original, ValueError("boom"), attempts=3)
    (dead,) = tx.outgoing
    added = {name for name, _ in dead.headers} - {name for name, _ in original.headers}
    declared = asyncapi["components"]["messages"][generate.DEAD_LETTER_MESSAGE]["headers"]["properties"]
    assert added == set(declared)
    assert _resolve(asyncapi, "#/channels/deadletter")["address"] == dead.topic


def test_payload_schemas_validate_real_events(asyncapi: dict[str, Any]) -> None:
    # The payloads live under components/schemas with rewritten refs; check the rewrite kept them usable.
    for event in _samples():
        root = {**asyncapi, "$ref": f"#/components/schemas/{type(event).__name__}"}
        Draft7Validator(root).validate(event.model_dump(mode="json"))


def test_payload_schemas_use_no_keyword_newer_than_the_asyncapi_schema_format(asyncapi: dict[str, Any]) -> None:
    # AsyncAPI's default schema format is a superset of Draft 07; 2020-12-only keywords would be ignored.
    text = yaml.safe_dump(asyncapi["components"]["schemas"])
    for keyword in ("prefixItems", "$defs", "unevaluatedProperties", "dependentSchemas", "$dynamicRef"):
        assert keyword not in text


def _refs(node: Any):  # noqa: ANN202
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local refs are expected, got {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node
