"""The embedded local stack: real Apache Kafka (KRaft; Tansu without Java), PostgreSQL and Redis servers
started from the project's own dependencies, without root or Docker.

    stack = LocalStack(StackSettings())
    endpoints = stack.up()      # idempotent; servers outlive this process
    stack.status()              # [ComponentStatus(...), ...]
    stack.down(purge=False)     # stops only what this state dir started
"""

from fedstream.stack.component import ComponentStatus
from fedstream.stack.errors import StackError
from fedstream.stack.manager import LocalStack

__all__ = ["ComponentStatus", "LocalStack", "StackError"]
