"""Which session a customer gets: rule order, every `when` key, business hours, fallbacks."""

from __future__ import annotations

import datetime as dt
import textwrap
from importlib import resources
from pathlib import Path

from bridge.core.routing import CustomerContext, Router
from bridge.core.routing_file import load_router

WEDNESDAY_NOON_UTC = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)

RULES = """
default: {assign_type: agent, group_id: 1}
rules:
  - name: vip
    when: {level: vip}
    route: {group_id: 100}
  - name: russian speakers
    when: {language: [ru, uk]}
    route: {group_id: 200}
  - name: chinese
    when: {language: zh}
    route: {group_id: 300}
  - name: sales link
    when: {start_param: sales}
    route: {assign_type: urobot, robot_id: 12362, scene_id: 39}
  - name: refunds from the website
    when: {start_param: website, tags: [refund, complaint]}
    route: {group_id: 400}
  - name: groups
    when: {chat_type: [group, supergroup]}
    route: {assign_type: robot}
"""


def router_for(tmp_path: Path, text: str) -> Router:
    path = tmp_path / "routing.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_router(path)


def routed(router: Router, now: dt.datetime = WEDNESDAY_NOON_UTC, **context: object) -> str:
    decision = router.decide(CustomerContext(**context), now)  # type: ignore[arg-type]
    assert decision.action == "session"
    return decision.route.rule_name


def test_without_a_routing_file_every_session_is_an_agent_with_no_group() -> None:
    decision = Router().decide(CustomerContext(language="ru", level="vip"), WEDNESDAY_NOON_UTC)
    assert decision.action == "session"
    assert decision.route.params() == {"assign_type": "agent"}


def test_first_matching_rule_wins_and_no_match_is_the_default(tmp_path: Path) -> None:
    router = router_for(tmp_path, RULES)
    # A Russian-speaking VIP matches two rules: the first one listed wins.
    assert routed(router, language="ru", level="vip") == "vip"
    assert router.decide(CustomerContext(language="ru"), WEDNESDAY_NOON_UTC).route.group_id == 200
    decision = router.decide(CustomerContext(language="en"), WEDNESDAY_NOON_UTC)
    assert decision.route.rule_name == "default"
    assert decision.route.params() == {"assign_type": "agent", "group_id": 1}


def test_language_is_a_prefix_match_on_the_telegram_code(tmp_path: Path) -> None:
    router = router_for(tmp_path, RULES)
    assert routed(router, language="zh-hans") == "chinese"
    assert routed(router, language="ZH_HK") == "chinese"
    assert routed(router, language="uk") == "russian speakers"
    assert routed(router, language="zu") == "default"  # not a prefix of "zh"
    assert routed(router, language=None) == "default"


def test_start_param_level_tags_and_chat_type(tmp_path: Path) -> None:
    router = router_for(tmp_path, RULES)
    sales = router.decide(CustomerContext(start_param="sales"), WEDNESDAY_NOON_UTC).route
    assert sales.params() == {"assign_type": "urobot", "robot_id": 12362, "scene_id": 39}
    assert routed(router, start_param="Sales") == "default"  # deep links are exact
    assert routed(router, level="VIP") == "vip"  # levels are case-insensitive
    # Every key of a rule must match; a list means any of.
    assert routed(router, start_param="website", tags=("vip-lead", "Refund")) == (
        "refunds from the website"
    )
    assert routed(router, start_param="website", tags=("other",)) == "default"
    assert routed(router, tags=("refund",)) == "default"
    assert routed(router, chat_type="supergroup") == "groups"
    assert routed(router, chat_type="private") == "default"


def test_asking_for_a_person_skips_robot_rules(tmp_path: Path) -> None:
    router = router_for(tmp_path, RULES)
    now = WEDNESDAY_NOON_UTC
    # The sales link goes to a urobot, but /agent goes on to the next agent rule...
    asked = router.decide(CustomerContext(start_param="sales", language="ru"), now, want_agent=True)
    assert asked.route.rule_name == "russian speakers" and asked.route.group_id == 200
    # ...or to the default when no agent rule matches.
    asked = router.decide(CustomerContext(start_param="sales"), now, want_agent=True)
    assert asked.route.params() == {"assign_type": "agent", "group_id": 1}

    robot_default = router_for(tmp_path, "default: {assign_type: robot}\n")
    asked = robot_default.decide(CustomerContext(), now, want_agent=True)
    assert asked.route.params() == {"assign_type": "agent"}
    assert robot_default.decide(CustomerContext(), now).route.assign_type == "robot"


HOURS = """
default: {{group_id: 1}}
rules:
  - name: sales link
    when: {{start_param: sales}}
    route: {{assign_type: urobot, robot_id: 5, scene_id: 6}}
business_hours:
  timezone: {tz}
  weekly: {{mon-fri: "09:00-12:00,13:00-20:00", sat: "10:00-14:00"}}
  holidays: [2026-10-01, "2026-12-24..2026-12-26"]
  outside: {outside}
"""


def hours(tmp_path: Path, tz: str = "Asia/Shanghai", outside: str = "leave_message") -> Router:
    return router_for(tmp_path, HOURS.format(tz=tz, outside=outside))


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_business_hours_are_read_in_their_time_zone(tmp_path: Path) -> None:
    shanghai = hours(tmp_path)
    # Tuesday 02:30 UTC is Tuesday 10:30 in Shanghai: open.
    assert shanghai.is_open(at("2026-11-24T02:30+00:00")) is True
    # Monday 23:30 UTC is already Tuesday 07:30 in Shanghai: not yet open.
    assert shanghai.is_open(at("2026-11-23T23:30+00:00")) is False
    # The lunch break between the two ranges.
    assert shanghai.is_open(at("2026-11-24T12:30+08:00")) is False
    # Friday 16:30 UTC is Saturday 00:30 in Shanghai; Saturday opens at 10:00 local.
    assert shanghai.is_open(at("2026-11-27T16:30+00:00")) is False
    assert shanghai.is_open(at("2026-11-28T02:30+00:00")) is True
    assert shanghai.is_open(at("2026-11-29T03:00+00:00")) is False  # Sunday: not listed

    new_york = hours(tmp_path, tz="America/New_York")
    # Saturday 00:30 UTC is still Friday 19:30 in New York: open, though UTC says Saturday.
    assert new_york.is_open(at("2026-11-28T00:30+00:00")) is True
    assert new_york.is_open(at("2026-11-28T01:30+00:00")) is False  # Friday 20:30 there


def test_holidays_close_the_whole_local_day(tmp_path: Path) -> None:
    router = hours(tmp_path)
    # Thursday 1 October 10:00 in Shanghai (02:00 UTC) is a holiday; the day before is not.
    assert router.is_open(at("2026-10-01T02:00+00:00")) is False
    assert router.is_open(at("2026-09-30T02:00+00:00")) is True
    # A range of holidays, inclusive at both ends.
    for day in ("2026-12-24", "2026-12-25", "2026-12-26"):
        assert router.is_open(at(f"{day}T10:00+08:00")) is False
    assert router.is_open(at("2026-12-28T10:00+08:00")) is True


def test_outside_hours_the_configured_action_applies(tmp_path: Path) -> None:
    night = at("2026-11-25T22:00+08:00")
    day = at("2026-11-25T10:00+08:00")
    who = CustomerContext(language="en")

    leave = hours(tmp_path, outside="leave_message")
    assert leave.decide(who, day).action == "session"
    decision = leave.decide(who, night)
    assert decision.action == "leave_message" and decision.open_hours is False
    # Robots work around the clock: a robot route is not affected.
    sales = leave.decide(CustomerContext(start_param="sales"), night)
    assert sales.action == "session" and sales.route.assign_type == "urobot"

    robot = hours(tmp_path, outside="robot").decide(who, night)
    assert robot.action == "session" and robot.route.params() == {"assign_type": "robot"}
    # Someone who asked for a person is not sent back to a robot.
    asked = hours(tmp_path, outside="robot").decide(who, night, want_agent=True)
    assert asked.action == "leave_message"

    anyway = hours(tmp_path, outside="agent").decide(who, night)
    assert anyway.action == "session" and anyway.route.group_id == 1

    shift = hours(tmp_path, outside="{assign_type: agent, group_id: 9}")
    late = shift.decide(who, night, want_agent=True)
    assert late.action == "session" and late.route.group_id == 9


def test_no_agent_online_and_queue_max_wait(tmp_path: Path) -> None:
    assert Router().when_no_agent().action == "leave_message"
    assert Router().no_agent_online == "leave_message"
    assert Router().queue_max_wait is None

    router = router_for(
        tmp_path,
        """
        no_agent_online: {assign_type: urobot, robot_id: 5, scene_id: 6}
        queue: {max_wait: 10m}
        """,
    )
    assert router.no_agent_online == "robot"
    fallback = router.when_no_agent()
    assert fallback.action == "session"
    assert fallback.route.params() == {"assign_type": "urobot", "robot_id": 5, "scene_id": 6}
    assert router.when_no_agent(want_agent=True).action == "leave_message"
    assert router.queue_max_wait == 600.0

    plain = router_for(tmp_path, "no_agent_online: robot\n")
    assert plain.when_no_agent().route.params() == {"assign_type": "robot"}


def test_texts_are_overridden_per_language(tmp_path: Path) -> None:
    router = router_for(
        tmp_path,
        """
        texts:
          ru: {queued: "Вы {position}-й в очереди."}
          en: {greeting: "Hi there!"}
        fallback_language: ru
        """,
    )
    assert router.texts.get("queued", "ru-RU", position=3) == "Вы 3-й в очереди."
    assert router.texts.get("greeting", "en") == "Hi there!"
    # A language without its own text falls back to fallback_language, then the defaults.
    assert router.texts.get("queued", "de", position=2) == "Вы 2-й в очереди."
    assert router.texts.get("greeting", "zh").startswith("您好")


def test_the_shipped_example_loads_and_routes() -> None:
    example = resources.files("bridge.core").joinpath("routing.example.yaml")
    assert example.is_file()  # shipped in the package, next to the code
    router = load_router(str(example))
    assert [r.name for r in router.rules][:2] == ["vip customers", "russian speakers"]
    day = at("2026-11-25T10:00+08:00")
    assert router.decide(CustomerContext(language="ru"), day).route.group_id == 200
    assert router.decide(CustomerContext(language="ru"), at("2026-11-25T20:00+08:00")).action == (
        "leave_message"
    )
