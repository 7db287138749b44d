import pytest

from rendercost.domain.jobs import ALLOWED_TRANSITIONS, TERMINAL_STATES, JobState, check_transition
from rendercost.errors import Conflict


def test_terminal_states_allow_nothing() -> None:
    for state in TERMINAL_STATES:
        assert ALLOWED_TRANSITIONS[state] == frozenset()
        with pytest.raises(Conflict):
            check_transition(state, JobState.QUEUED)


def test_every_state_has_a_transition_entry() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(JobState)


def test_running_can_go_back_to_the_queue() -> None:
    check_transition(JobState.RUNNING, JobState.QUEUED)
    check_transition(JobState.QUEUED, JobState.CANCELLED)
    with pytest.raises(Conflict):
        check_transition(JobState.QUEUED, JobState.SUCCEEDED)
