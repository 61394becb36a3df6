"""What Udesk's answer to a session request makes of the customer's session, read alone."""

from __future__ import annotations

from bridge.core.ports import SessionOpened
from bridge.core.to_udesk import apply_opened
from bridge.store.tables import ImSession, SessionState


def _row(**values: object) -> ImSession:
    return ImSession(**{"customer_id": 1, "assign_type": "agent", "state": "queued", **values})


def test_an_agent_answer_connects_and_names_the_agent() -> None:
    row = _row()
    opened = SessionOpened("agent", im_sub_session_id=77, agent_id=3, agent_name="Tom")
    apply_opened(row, opened, "vip", None, None)
    assert (row.state, row.im_sub_session_id, row.agent_name, row.rule_name) == (
        SessionState.AGENT.value,
        77,
        "Tom",
        "vip",
    )


def test_an_agent_answer_keeps_what_a_push_already_said() -> None:
    row = _row(im_sub_session_id=77, agent_id=3, agent_name="Tom")
    apply_opened(row, SessionOpened("agent"), "default", None, None)
    assert (row.im_sub_session_id, row.agent_id, row.agent_name) == (77, 3, "Tom")


def test_queued_after_an_agent_joined_stays_with_the_agent() -> None:
    # The start_session push arrived before the open's own "queued" answer.
    row = _row(state=SessionState.AGENT.value, agent_name="Tom")
    apply_opened(row, SessionOpened("queued", queue_name="sales", position=4), "d", None, None)
    assert row.state == SessionState.AGENT.value and row.queue_position is None


def test_queued_shows_the_place_in_line() -> None:
    row = _row()
    apply_opened(row, SessionOpened("queued", queue_name="sales", position=4), "d", None, None)
    assert (row.state, row.queue_name, row.queue_position, row.assign_type) == (
        SessionState.QUEUED.value,
        "sales",
        4,
        "agent",
    )


def test_robots_are_marked_as_such_with_their_scene() -> None:
    robot = _row()
    apply_opened(robot, SessionOpened("robot"), "bot", None, None)
    assert (robot.state, robot.im_sub_session_id, robot.assign_type) == ("robot", 0, "robot")
    urobot = _row()
    apply_opened(urobot, SessionOpened("urobot", urobot_session_id=9), "sales", 12362, 39)
    assert (urobot.state, urobot.robot_id, urobot.scene_id, urobot.urobot_session_id) == (
        "urobot",
        12362,
        39,
        9,
    )
