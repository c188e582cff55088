from datetime import UTC, datetime, timedelta

from services.aggregation.domain import Close, Fail, RoundState, RoundStatus, admit, next_step
from schemas.events import RejectionReason

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def state(received=0, status=RoundStatus.COLLECTING, quorum=2):
    return RoundState("f", 1, quorum, T0 + timedelta(seconds=60), ("a", "b", "c"), status, received)


def test_collecting_round_waits_before_the_deadline():
    assert next_step(state(received=2), T0) is None


def test_round_closes_early_when_every_selected_participant_submitted():
    assert next_step(state(received=3), T0) == Close("all_submitted")


def test_at_the_deadline_a_round_with_quorum_closes():
    assert next_step(state(received=2), T0 + timedelta(seconds=60)) == Close("deadline")


def test_at_the_deadline_a_round_below_quorum_fails():
    assert next_step(state(received=1), T0 + timedelta(seconds=61)) == Fail(1)


def test_a_closed_round_never_moves_again():
    for status in (RoundStatus.AGGREGATED, RoundStatus.FAILED):
        assert next_step(state(received=3, status=status), T0 + timedelta(days=1)) is None


def test_admission_reasons():
    assert admit(None, "a") is RejectionReason.UNKNOWN_ROUND
    assert admit(state(status=RoundStatus.AGGREGATED), "a") is RejectionReason.ROUND_CLOSED
    assert admit(state(), "zed") is RejectionReason.NOT_SELECTED
    assert admit(state(), "a") is None
