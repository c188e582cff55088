"""Every event and command that crosses a service boundary.

Commands are imperative (``CreateFederation``), events past tense (``RoundOpened``). Each class's
``TYPE`` is its CloudEvents type; ``schemas.registry`` maps types to classes for decoding, and
consumers dispatch on the class, never on a string.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from schemas.base import BlobRef, Event, Frozen, Identifier, ParamSpec, RoundNumber, Sha256Hex
from schemas.federation import FederationSpec
from schemas.identity import Signature

Detail = Annotated[str, StringConstraints(max_length=2000)]


# --- registry --------------------------------------------------------------------------------


class CreateFederation(Event):
    """Command from an operator (CLI/API): create a federation from a validated spec."""

    TYPE: ClassVar[str] = "io.fedstream.federation.create.v1"
    spec: FederationSpec
    requested_by: Identifier


class FederationCreated(Event):
    TYPE: ClassVar[str] = "io.fedstream.federation.created.v1"
    spec: FederationSpec
    params: tuple[ParamSpec, ...]
    initial_model: BlobRef


class RoundOpened(Event):
    TYPE: ClassVar[str] = "io.fedstream.round.opened.v1"
    round: RoundNumber
    model_version: int = Field(ge=0)
    global_model: BlobRef
    participants: tuple[Identifier, ...]
    quorum: int = Field(ge=1)
    deadline: AwareDatetime
    local_epochs: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    batch_size: int = Field(ge=1)


class ModelMetrics(Frozen):
    """Example-weighted federated evaluation of one model on the participants' holdouts."""

    loss: float
    accuracy: float
    auc: float | None  # None when no evaluator's holdout had both classes
    num_examples: int = Field(ge=0)
    evaluators: int = Field(ge=0)


class Contribution(Frozen):
    """One update that went into an aggregate: the lineage a model version keeps."""

    update_id: UUID
    participant_id: Identifier
    num_examples: int = Field(ge=1)
    sha256: Sha256Hex


class ModelReleased(Event):
    TYPE: ClassVar[str] = "io.fedstream.model.released.v1"
    round: RoundNumber
    model_version: int = Field(ge=1)
    model: BlobRef
    metrics: ModelMetrics
    contributions: tuple[Contribution, ...]


class CompletionReason(StrEnum):
    CONVERGED = "converged"
    TARGET_REACHED = "target_reached"
    ROUND_BUDGET = "round_budget"
    # fewer participants with privacy budget left than the quorum needs
    PRIVACY_BUDGETS_EXHAUSTED = "privacy_budgets_exhausted"


class FederationCompleted(Event):
    TYPE: ClassVar[str] = "io.fedstream.federation.completed.v1"
    reason: CompletionReason
    rounds: int = Field(ge=0)
    final_model_version: int = Field(ge=0)


# --- participants ----------------------------------------------------------------------------


class DpParameters(Frozen):
    """The mechanism a participant ran (DP-SGD: the Poisson-subsampled Gaussian, ``steps`` times).

    Everything the accounting service needs to recompute ε itself; an ε is deliberately not a field.
    """

    mechanism: Literal["dp_sgd"] = "dp_sgd"
    noise_multiplier: float = Field(gt=0)  # σ: noise stddev / clipping norm
    sample_rate: float = Field(gt=0, le=1)  # q: Poisson sampling probability per record per step
    steps: int = Field(ge=0)
    clipping_norm: float = Field(gt=0)  # C
    delta: float = Field(gt=0, lt=1)  # the δ the participant planned for
    dataset_id: Identifier  # budgets compose per participant × dataset, across federations


class UpdateSubmitted(Event):
    """A participant's trained model, by claim check. ``protection`` is the seam for DP/HE/SecAgg."""

    TYPE: ClassVar[str] = "io.fedstream.update.submitted.v1"
    update_id: UUID
    participant_id: Identifier
    round: RoundNumber
    base_model_version: int = Field(ge=0)
    update: BlobRef
    num_examples: int = Field(ge=1)
    train_loss: float
    # "he"/"dp_he": the blob is CKKS/BFV ciphertexts (fedstream.crypto.he), of a DP-SGD update for "dp_he"
    protection: Literal["plaintext", "dp", "he", "dp_he"] = "plaintext"
    privacy: DpParameters | None = None
    # The participant's Ed25519 signature over this event's canonical form (fedstream.security.signing);
    # optional in the schema so an unsigned submission is rejected with a reason, not dead-lettered.
    signature: Signature | None = None

    @model_validator(mode="after")
    def _dp_carries_parameters(self) -> "UpdateSubmitted":
        if (self.protection in ("dp", "dp_he")) != (self.privacy is not None):
            raise ValueError("protection 'dp' and DP parameters go together: one without the other is malformed")
        return self


class ParticipantHeartbeat(Event):
    TYPE: ClassVar[str] = "io.fedstream.participant.heartbeat.v1"
    participant_id: Identifier
    ttl_s: float = Field(gt=0, le=3600)
    # Signed like a submission (fedstream.security.signing): a forged heartbeat would fake liveness. Optional
    # in the schema so an unsigned one is refused with a reason, not dead-lettered.
    signature: Signature | None = None


class EvaluationReported(Event):
    """A participant's evaluation of a candidate aggregate on its local holdout."""

    TYPE: ClassVar[str] = "io.fedstream.evaluation.reported.v1"
    participant_id: Identifier
    round: RoundNumber
    candidate_sha256: Sha256Hex
    num_examples: int = Field(ge=1)
    loss: float
    accuracy: float = Field(ge=0, le=1)
    auc: float | None = Field(ge=0, le=1)  # undefined on a single-class holdout
    # Signed like a submission: a forged report could get a candidate released or rejected.
    signature: Signature | None = None


# --- ingestion -------------------------------------------------------------------------------


class RejectionReason(StrEnum):
    """Machine-readable reasons an update is refused; dashboards and participants key on these."""

    UNKNOWN_FEDERATION = "unknown_federation"
    UNKNOWN_ROUND = "unknown_round"
    STALE_ROUND = "stale_round"
    ROUND_CLOSED = "round_closed"
    NOT_ENROLLED = "not_enrolled"
    NOT_SELECTED = "not_selected"
    DUPLICATE = "duplicate"
    OVERSIZE = "oversize"
    BLOB_UNAVAILABLE = "blob_unavailable"
    HASH_MISMATCH = "hash_mismatch"
    MALFORMED_TENSORS = "malformed_tensors"
    SHAPE_MISMATCH = "shape_mismatch"
    NON_FINITE = "non_finite"
    # homomorphic encryption: a ciphertext blob that is not ours, or not under this federation's context
    MALFORMED_CIPHERTEXT = "malformed_ciphertext"
    WRONG_CONTEXT = "wrong_context"
    # zero trust (identity and admission)
    UNSIGNED = "unsigned"
    SIGNATURE_INVALID = "signature_invalid"
    UNKNOWN_KEY = "unknown_key"
    KEY_REVOKED = "key_revoked"
    SOURCE_MISMATCH = "source_mismatch"  # the key belongs to another participant than the one claimed
    REPLAYED = "replayed"
    STALE = "stale"  # signed outside the freshness window
    RATE_LIMITED = "rate_limited"  # retry later, with a fresh signature
    NO_CONSENT = "no_consent"
    NO_BAA = "no_baa"
    EXTRA_FIELDS = "extra_fields"  # data minimisation: fields beyond the schema


class UpdateAccepted(Event):
    TYPE: ClassVar[str] = "io.fedstream.update.accepted.v1"
    update_id: UUID
    participant_id: Identifier
    round: RoundNumber
    update: BlobRef
    num_examples: int = Field(ge=1)
    train_loss: float
    privacy: DpParameters | None = None


class UpdateRejected(Event):
    TYPE: ClassVar[str] = "io.fedstream.update.rejected.v1"
    update_id: UUID
    participant_id: str = Field(max_length=128)  # as claimed: it may be unknown
    round: int
    reason: RejectionReason
    detail: Detail


# --- privacy accounting ----------------------------------------------------------------------


class PrivacyCharged(Event):
    """The accepted update, now accounted for; aggregation only counts charged updates."""

    TYPE: ClassVar[str] = "io.fedstream.privacy.charged.v1"
    update_id: UUID
    participant_id: Identifier
    round: RoundNumber
    update: BlobRef
    num_examples: int = Field(ge=1)
    # Cumulative ε of this participant on this dataset once this update is counted (None: no DP).
    epsilon: float | None = Field(default=None, ge=0)
    delta: float | None = Field(default=None, ge=0, lt=1)
    privacy: DpParameters | None = None
    accountant: Literal["rdp", "pld"] | None = None  # which bound ``epsilon`` is (the tighter one)
    budget_epsilon: float | None = Field(default=None, gt=0)


class BudgetReason(StrEnum):
    """Why the accountant refused an update (participants and dashboards key on these)."""

    EXHAUSTED = "exhausted"  # counting it would take cumulative ε over the budget
    MISSING_PARAMETERS = "missing_parameters"  # a DP federation got an update without DP parameters


class BudgetExhausted(Event):
    """An accepted update the ledger refused: it is not charged, so aggregation never counts it, and its
    participant is not selected again in this federation."""

    TYPE: ClassVar[str] = "io.fedstream.privacy.budget_exhausted.v1"
    update_id: UUID
    participant_id: Identifier
    round: RoundNumber
    dataset_id: Identifier | None
    reason: BudgetReason
    detail: Detail
    epsilon_spent: float = Field(ge=0)  # before this update
    epsilon_requested: float | None = Field(default=None, ge=0)  # cumulative, had it been counted
    budget_epsilon: float = Field(gt=0)
    delta: float = Field(gt=0, lt=1)


# --- aggregation -----------------------------------------------------------------------------


class CentralDpApplied(Frozen):
    """DP-FedAvg at the aggregator: each update's delta clipped to ``clip_norm``, N(0, noise_stddev²) added
    to the sum. Participant-level: every selected participant takes part in a round (sample rate 1)."""

    noise_multiplier: float = Field(ge=0)
    clip_norm: float = Field(gt=0)
    noise_stddev: float = Field(ge=0)  # noise_multiplier × clip_norm
    fraction_clipped: float = Field(ge=0, le=1)
    next_clip_norm: float = Field(gt=0)  # adaptive clipping's S for the next round (= clip_norm when fixed)


class RoundAggregated(Event):
    TYPE: ClassVar[str] = "io.fedstream.round.aggregated.v1"
    round: RoundNumber
    aggregate: BlobRef
    contributions: tuple[Contribution, ...] = Field(min_length=1)
    closed_by: Literal["all_submitted", "deadline"]
    central_dp: CentralDpApplied | None = None


class RoundFailed(Event):
    TYPE: ClassVar[str] = "io.fedstream.round.failed.v1"
    round: RoundNumber
    reason: Literal["quorum_not_met"]
    received: int = Field(ge=0)
    quorum: int = Field(ge=1)


# --- validation ------------------------------------------------------------------------------


class ModelValidated(Event):
    TYPE: ClassVar[str] = "io.fedstream.model.validated.v1"
    round: RoundNumber
    candidate: BlobRef
    metrics: ModelMetrics
    contributions: tuple[Contribution, ...]
    converged: bool
    target_reached: bool


class ValidationGate(StrEnum):
    NON_FINITE_WEIGHTS = "non_finite_weights"
    REGRESSION = "regression"
    BELOW_THRESHOLD = "below_threshold"
    NO_EVALUATIONS = "no_evaluations"


class ModelRejected(Event):
    TYPE: ClassVar[str] = "io.fedstream.model.rejected.v1"
    round: RoundNumber
    candidate: BlobRef
    gate: ValidationGate
    detail: Detail
    metrics: ModelMetrics | None = None
