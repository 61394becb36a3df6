"""A broken routing file is reported with file, line and a hint, and never put in force."""

from __future__ import annotations

import datetime as dt
import logging
import textwrap
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from bridge.admin.reload import reload_routing
from bridge.core.routing import CustomerContext, Router, RoutingFileError
from bridge.core.routing_file import load_router

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def problems_in(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "routing.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    with pytest.raises(RoutingFileError) as caught:
        load_router(path)
    return caught.value.problems


def test_a_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    problems = problems_in(
        tmp_path,
        """
        default:
          assign_type: agent
        rules:
          - name: vip
            when: {level: [vip, gold}
            route: {group_id: 100}
        """,
    )
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path / 'routing.yaml'}:")
    assert "not valid YAML" in problems[0]
    assert "line 4" in problems[0] or ":4:" in problems[0] or ":5:" in problems[0]

    tabs = problems_in(tmp_path, "default:\n\tassign_type: agent\n")
    assert ":2: not valid YAML" in tabs[0] and "spaces, not tabs" in tabs[0]


def test_an_unknown_key_is_an_error_with_its_line_and_a_suggestion(tmp_path: Path) -> None:
    problems = problems_in(
        tmp_path,
        """
        default: {group_id: 1}
        rules:
          - name: russian speakers
            when: {langauge: [ru, uk]}
            route: {group_id: 200}
        buisness_hours: {timezone: UTC, weekly: {mon: "09:00-18:00"}}
        """,
    )
    file = tmp_path / "routing.yaml"
    assert problems == [
        f"{file}:4: rules[0].when: unknown key 'langauge' (did you mean 'language'? "
        "allowed here: language, start_param, level, tags, chat_type)",
        f"{file}:6: top level: unknown key 'buisness_hours' (did you mean 'business_hours'? "
        "allowed here: default, rules, business_hours, no_agent_online, queue, texts, "
        "fallback_language)",
    ]


def test_every_problem_is_reported_at_once_in_line_order(tmp_path: Path) -> None:
    problems = problems_in(
        tmp_path,
        """
        default: {group_id: 5}
        rules:
          - name: sales
            when: {start_param: sales}
            route: {assign_type: urobot, robot_id: 12362}
          - name: sales
            when: {}
            route: {assign_type: agnet}
        business_hours:
          timezone: Asia/Shangai
          weekly: {mon-fri: "09:00-18:00", fri: "19:00-17:00"}
          holidays: [2026-02-30]
        no_agent_online: agent
        queue: {max_wait: soon}
        default: {assign_type: robot, group_id: 5}
        """,
    )
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == sorted(lines)
    text = "\n".join(problems)
    assert ":5: rules[0].route: an urobot route needs robot_id and scene_id" in text
    assert ":6: rules[1].name: rule name 'sales' is already used by rules[0]" in text
    assert ":7: rules[1].when: `when` has no condition" in text
    assert ":8: rules[1].route.assign_type:" in text and "did you mean 'agent'?" in text
    assert ":10: business_hours.timezone: unknown time zone 'Asia/Shangai'" in text
    assert ":11: business_hours.weekly.fri: '19:00-17:00' ends before it starts" in text
    assert ":11: business_hours.weekly.fri: fri is already given by 'mon-fri'" in text
    assert ":12: business_hours.holidays[0]:" in text
    assert ":13: no_agent_online:" in text
    assert ":14: queue.max_wait: 'soon' is not a duration" in text
    assert ":15: default: key 'default' appears twice" in text
    assert ":15: default: a robot route cannot have agent_id or group_id" in text


def test_text_overrides_keep_their_placeholders(tmp_path: Path) -> None:
    problems = problems_in(
        tmp_path,
        """
        texts:
          en:
            queued: "You are number {pos} in line."
            agent_joined: "An agent joined."
            greting: "Hello"
            greeting: "Hello {}"
          ru:
            transferred: "Теперь с вами {agent}."
            session_closed: "Конец {agent"
        """,
    )
    file = tmp_path / "routing.yaml"
    assert problems == [
        f"{file}:3: texts.en.queued: unknown placeholder {{pos}} (this text can use: {{position}})",
        f"{file}:3: texts.en.queued: placeholder {{position}} is missing "
        "(the default text uses: {position})",
        f"{file}:4: texts.en.agent_joined: placeholder {{agent}} is missing "
        "(the default text uses: {agent})",
        f"{file}:5: texts.en.greting: unknown text 'greting' (did you mean 'greeting'?)",
        f"{file}:6: texts.en.greeting: numbered placeholders like {{}} or {{0}} cannot be filled "
        "(use names)",
        f"{file}:9: texts.ru.session_closed: not a valid template: expected '}}' before end of "
        "string (write {{ and }} for literal braces)",
    ]


def test_a_missing_or_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RoutingFileError) as caught:
        load_router(tmp_path / "nope.yaml")
    assert caught.value.problems == [f"{tmp_path / 'nope.yaml'}: no such file (check ROUTING_FILE)"]
    assert "the routing file is empty" in problems_in(tmp_path, "# nothing yet\n")[0]


def reloads(outcome: str) -> float:
    return REGISTRY.get_sample_value("bridge_routing_reloads_total", {"outcome": outcome}) or 0.0


def test_a_broken_file_is_refused_on_reload_and_the_old_rules_keep_routing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(
        "rules:\n  - name: russian speakers\n    when: {language: ru}\n    route: {group_id: 200}\n"
    )
    router = load_router(path)
    ru = CustomerContext(language="ru")
    assert router.decide(ru, NOW).route.group_id == 200
    first_loaded = router.loaded_at

    # An operator saves a typo and reloads: refused, logged, counted; group 200 still routes.
    path.write_text(
        "rules:\n  - name: russian speakers\n    when: {languages: ru}\n"
        "    route: {group_id: 300}\n"
    )
    errors_before, ok_before = reloads("error"), reloads("ok")
    caplog.set_level(logging.INFO, logger="bridge.routing")
    problems = reload_routing(router, trigger="test")
    assert problems == [
        f"{path}:3: rules[0].when: unknown key 'languages' (did you mean 'language'? "
        "allowed here: language, start_param, level, tags, chat_type)"
    ]
    assert router.decide(ru, NOW).route.group_id == 200
    assert router.loaded_at == first_loaded
    assert reloads("error") == errors_before + 1 and reloads("ok") == ok_before
    assert "refused, the rules in force stay" in caplog.text and "languages" in caplog.text

    # Fixed: the new rules are in force in the same Router object the core holds.
    path.write_text(
        "rules:\n  - name: russian speakers\n    when: {language: ru}\n    route: {group_id: 300}\n"
    )
    assert reload_routing(router, trigger="test") == []
    assert router.decide(ru, NOW).route.group_id == 300
    assert reloads("ok") == ok_before + 1
    assert "routing reloaded (test)" in caplog.text


def test_reload_without_a_routing_file_changes_nothing() -> None:
    router = Router()
    with pytest.raises(RoutingFileError):
        router.reload()
    assert reload_routing(router, trigger="test") == [
        "no routing file to reload (ROUTING_FILE is not set)"
    ]
    assert router.decide(CustomerContext(), NOW).route.params() == {"assign_type": "agent"}
