"""The federation spec: seed §7.2's technical specification template as a validated document.

One YAML file describes a federation. It is validated here, at the edge, with errors that name the
field; the registry stores it and every later decision (who may submit, the quorum, the gates) reads it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from schemas.base import Frozen, Identifier
from schemas.he import HeSpec


class UseCase(StrEnum):
    CLINICAL_PREDICTION = "clinical_prediction"
    FRAUD_DETECTION = "fraud_detection"
    AGGREGATE_STATISTICS = "aggregate_statistics"
    OTHER = "other"


class DataSensitivity(StrEnum):
    """Drives the privacy budget (seed §2.1: ε = 0.5 patient-level, ε = 1.0 aggregate statistics)."""

    PATIENT_LEVEL = "patient_level"
    AGGREGATE = "aggregate"


class CryptoApproach(StrEnum):
    NONE = "none"  # plaintext federated averaging (the foundation)
    DP = "dp"
    HE = "he"
    SECAGG = "secagg"
    HYBRID = "hybrid"


class ComplianceRegime(StrEnum):
    HIPAA = "hipaa"
    GDPR = "gdpr"
    PCI_DSS = "pci_dss"


class ParticipantSpec(Frozen):
    participant_id: Identifier
    organisation: Identifier
    kind: Literal["hospital", "bank", "lab", "other"] = "hospital"


class ModelSpec(Frozen):
    """The model every participant trains: a binary classifier with one logit (``fedstream.ml.models``
    builds it; this is the one definition, free of torch so every service can read it)."""

    architecture: Literal["logistic", "mlp"]
    input_dim: int = Field(gt=0)
    hidden: tuple[int, ...] = ()
    # Training uses BCEWithLogits on labels in {0, 1}: one logit is the only shape that fits.
    output_dim: Literal[1] = 1
    init_seed: int = 0

    @field_validator("hidden", mode="before")
    @classmethod
    def _list_as_tuple(cls, value: object) -> object:
        return tuple(value) if isinstance(value, list) else value  # YAML and Python callers have no tuples

    @model_validator(mode="after")
    def _hidden_only_for_mlp(self) -> "ModelSpec":
        if self.architecture == "logistic" and self.hidden:
            raise ValueError("a logistic model has no hidden layers; use architecture: mlp")
        if self.architecture == "mlp" and not self.hidden:
            raise ValueError("an mlp needs at least one hidden layer, e.g. hidden: [16]")
        if any(h <= 0 for h in self.hidden):
            raise ValueError("hidden layer sizes must be positive")
        return self


class DataSpec(Frozen):
    """Which local data each simulated participant loads (real sites point at their own data)."""

    dataset: Literal["breast_cancer", "synthetic"] = "synthetic"
    seed: int = 0
    patients_per_site: int = Field(default=2000, gt=0)


class TrainingSpec(Frozen):
    rounds: int = Field(default=30, ge=1, le=10_000)
    local_epochs: int = Field(default=1, ge=1, le=100)
    learning_rate: float = Field(default=0.1, gt=0, le=10)
    batch_size: int = Field(default=32, ge=1)
    quorum: int = Field(default=2, ge=1)
    round_deadline_s: float = Field(default=60.0, gt=0)
    evaluation_deadline_s: float = Field(default=30.0, gt=0)


class ValidationSpec(Frozen):
    metric: Literal["auc", "accuracy"] = "auc"
    min_metric: float = Field(default=0.5, ge=0, le=1)
    max_regression: float = Field(default=0.05, ge=0, le=1)
    convergence_threshold: float = Field(default=0.002, ge=0)
    patience: int = Field(default=3, ge=1)
    target_metric: float | None = Field(default=None, ge=0, le=1)


# Seed §2.1: the most ε a participant may spend on one dataset, by how sensitive the data are.
EPSILON_CEILING: dict[DataSensitivity, float] = {DataSensitivity.PATIENT_LEVEL: 0.5, DataSensitivity.AGGREGATE: 1.0}


class PrivacySpec(Frozen):
    """The privacy budget (ε, δ) per participant and dataset. ``epsilon`` left out means the ceiling of
    the data's sensitivity class; a spec may ask for less than the ceiling, never more."""

    data_sensitivity: DataSensitivity = DataSensitivity.PATIENT_LEVEL
    epsilon: float | None = Field(default=None, gt=0)
    delta: float = Field(default=1e-5, gt=0, lt=1)

    @model_validator(mode="after")
    def _within_ceiling(self) -> "PrivacySpec":
        ceiling = EPSILON_CEILING[self.data_sensitivity]
        if self.epsilon is not None and self.epsilon > ceiling:
            raise ValueError(
                f"epsilon {self.epsilon} exceeds the ceiling {ceiling} for {self.data_sensitivity.value} data"
            )
        return self

    @property
    def budget_epsilon(self) -> float:
        return EPSILON_CEILING[self.data_sensitivity] if self.epsilon is None else self.epsilon


class DpSpec(Frozen):
    """How differential privacy is applied when ``crypto: dp``.

    Local DP-SGD at each participant (record-level: per-sample clipping to ``clipping_norm``, noise
    planned from the budget over all planned rounds unless ``noise_multiplier`` fixes it), and
    optionally central DP-FedAvg at the aggregator (participant-level: each update delta clipped to
    ``central_clipping_norm``, Gaussian noise σS on the sum; ``adaptive_clipping`` tracks the
    ``target_quantile`` of update norms instead of a fixed S).
    """

    local: bool = True
    clipping_norm: float = Field(default=1.0, gt=0)
    noise_multiplier: float | None = Field(default=None, gt=0)
    central: bool = False
    central_clipping_norm: float = Field(default=1.0, gt=0)
    central_noise_multiplier: float = Field(default=1.0, ge=0)
    adaptive_clipping: bool = False
    target_quantile: float = Field(default=0.5, gt=0, lt=1)
    clipping_learning_rate: float = Field(default=0.2, gt=0)


class ComplianceSpec(Frozen):
    regimes: tuple[ComplianceRegime, ...] = (ComplianceRegime.HIPAA, ComplianceRegime.GDPR)
    retention_days: int = Field(default=365, ge=1)


class LimitsSpec(Frozen):
    max_update_bytes: int = Field(default=64 * 1024 * 1024, gt=0)


class FederationSpec(Frozen):
    """Seed §7.2: project, participants, use case, privacy requirements, technical stack."""

    federation_id: Identifier
    project_name: str = Field(min_length=1, max_length=200)
    use_case: UseCase
    participants: tuple[ParticipantSpec, ...] = Field(min_length=1)
    model: ModelSpec
    data: DataSpec = DataSpec()
    training: TrainingSpec = TrainingSpec()
    validation: ValidationSpec = ValidationSpec()
    privacy: PrivacySpec = PrivacySpec()
    crypto: CryptoApproach = CryptoApproach.NONE
    dp: DpSpec = DpSpec()
    he: HeSpec = HeSpec()  # read when crypto: he
    compliance: ComplianceSpec = ComplianceSpec()
    limits: LimitsSpec = LimitsSpec()

    @model_validator(mode="after")
    def _consistent(self) -> "FederationSpec":
        ids = [p.participant_id for p in self.participants]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"participant ids must be unique; repeated: {', '.join(duplicates)}")
        if self.training.quorum > len(self.participants):
            raise ValueError(
                f"training.quorum ({self.training.quorum}) exceeds the number of participants ({len(ids)})"
            )
        if self.crypto not in (CryptoApproach.NONE, CryptoApproach.DP, CryptoApproach.HE):
            raise ValueError(f"crypto approach {self.crypto.value!r} is not available yet; use 'none', 'dp' or 'he'")
        if self.crypto is CryptoApproach.HE and self.dp.central:
            # Central DP clips and noises each update at the aggregator, which only ever sees ciphertexts.
            raise ValueError("crypto: he does not compose with dp.central; use he.local_dp for DP-SGD before encryption")
        if self.crypto is CryptoApproach.DP and not (self.dp.local or self.dp.central):
            raise ValueError("crypto: dp needs dp.local, dp.central or both")
        return self

    @property
    def local_dp(self) -> bool:
        """Participants must train with DP-SGD and report its parameters."""
        if self.crypto is CryptoApproach.HE:
            return self.he.local_dp
        return self.crypto is CryptoApproach.DP and self.dp.local

    @property
    def encrypted(self) -> bool:
        """Updates travel and are summed as ciphertexts; only the key custodian decrypts the aggregate."""
        return self.crypto is CryptoApproach.HE

    @property
    def participant_ids(self) -> tuple[str, ...]:
        return tuple(p.participant_id for p in self.participants)


class SpecError(ValueError):
    """A federation spec that does not validate; the message names every offending field."""


def parse_spec(text: str) -> FederationSpec:
    """YAML (or JSON) text → a validated spec. Goes through JSON so strict mode accepts enum names and lists."""
    import json

    import yaml
    from pydantic import ValidationError

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError("a federation spec is a mapping of fields (federation_id, participants, model, ...)")
    try:
        return FederationSpec.model_validate_json(json.dumps(data, default=str))
    except ValidationError as exc:
        problems = [f"  {'.'.join(map(str, e['loc'])) or '<spec>'}: {e['msg']}" for e in exc.errors()]
        raise SpecError("invalid federation spec:\n" + "\n".join(problems)) from None
