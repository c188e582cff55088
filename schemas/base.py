"""The envelope every cross-service message shares, and the small value types events carry.

Events are frozen, strict pydantic models: a message that does not match its model exactly is
rejected at the edge (and dead-lettered), never half-understood. ``extra="forbid"`` is also data
minimisation: a submission carrying fields beyond the schema is refused.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, ClassVar
from uuid import UUID, uuid4, uuid5

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

# Opaque identifiers only: no patient or person data may ever be an id (they end up in keys and logs).
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
RoundNumber = Annotated[int, Field(ge=1)]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Frozen(BaseModel):
    """Base for every value that crosses a process boundary."""

    # allow_inf_nan=False: NaN/inf would silently become null in JSON; refuse them when the value is made.
    model_config = ConfigDict(frozen=True, strict=True, extra="forbid", allow_inf_nan=False)


class BlobRef(Frozen):
    """A claim check: where a large payload lives and the hash that proves it is the right one."""

    uri: str = Field(min_length=1, max_length=2048)
    sha256: Sha256Hex
    size: int = Field(ge=0)
    media_type: str = "application/vnd.safetensors"


class ParamSpec(Frozen):
    """Name, dtype and shape of one model tensor: what an update must match exactly."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    dtype: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        """Number of elements."""
        n = 1
        for d in self.shape:
            n *= d
        return n


class Event(Frozen):
    """Common envelope. ``TYPE`` is the CloudEvents type; it is also how consumers dispatch."""

    TYPE: ClassVar[str] = ""
    SCHEMA_VERSION: ClassVar[int] = 1

    event_id: UUID = Field(default_factory=uuid4)
    source: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    time: AwareDatetime = Field(default_factory=utcnow)
    schema_version: int = 1
    federation_id: Identifier

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.TYPE and not re.fullmatch(r"io\.fedstream\.[a-z_.]+\.v\d+", cls.TYPE):
            raise TypeError(f"{cls.__name__}.TYPE {cls.TYPE!r} is not io.fedstream.<name>.v<N>")

    @property
    def round_number(self) -> int | None:
        return getattr(self, "round", None)


_FEDSTREAM_NAMESPACE = UUID("6f1d3c1e-7d0b-5b8e-9a53-2f6a4c1f0e11")


def derived_id(*parts: object) -> UUID:
    """A deterministic event id for a fact that can happen once (e.g. "round 3 of f closed").

    Two instances, or a retry after a crash, that decide the same fact emit the same id, which every
    consumer's inbox then collapses to one.
    """
    return uuid5(_FEDSTREAM_NAMESPACE, "/".join(str(p) for p in parts))
