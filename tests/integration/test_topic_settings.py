"""Declared topic settings reach topics that already exist (an upgrade bounds their retention too)."""

from __future__ import annotations

from uuid import uuid4

from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from fedstream.messaging.kafka import align_topic_configs, make_admin
from schemas.topics import Topic


async def _retention(admin, name: str) -> str:
    [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs={"retention.ms": None})])
    [(_, _, _, _, entries)] = response.resources
    return {entry[0]: entry[1] for entry in entries}["retention.ms"]


async def test_an_existing_topic_gets_its_declared_retention(infra):
    name = f"fedstream.test-align-{uuid4().hex[:8]}"
    admin = make_admin(infra.endpoints)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])  # an older version's topic
        assert await _retention(admin, name) != "123456789"
        topic = Topic(name, "test", (), (), (), partitions=1, config=(("retention.ms", "123456789"),))
        assert await align_topic_configs(infra.endpoints, (topic,)) == []
        assert await _retention(admin, name) == "123456789"
    finally:
        await admin.delete_topics([name])
        await admin.close()
