"""The routing file: YAML → validated ``RoutingConfig``, or every problem with file and line.

The YAML is composed into nodes first so every key keeps its line; pydantic models (unknown
keys are errors: a typo must not silently send everyone to the default) validate the shape,
and their error locations are mapped back to those lines.  Checks that need several values
at once (text placeholders, a weekday given twice, duplicate rule names) run on the raw data
so one run reports everything.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import string
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bridge.core.business_hours import BusinessHours, HoursError, parse_days, parse_holiday
from bridge.core.business_hours import parse_ranges as _parse_ranges
from bridge.core.ports import Route
from bridge.core.routing import Condition, Router, RoutingConfig, RoutingFileError, Rule
from bridge.core.texts import Texts, default_texts, placeholders
from bridge.settings import parse_duration

Path_ = tuple[str | int, ...]
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$")
_LANGUAGE_HINT = "a Telegram language_code like en, ru, zh or zh-hans"


def _problem(message: str, hint: str = "") -> PydanticCustomError:
    # The message is a format template for pydantic: keep braces out of it.
    return PydanticCustomError(
        "routing", message.replace("{", "(").replace("}", ")"), {"hint": hint}
    )


# --- value types -------------------------------------------------------------------------


def _as_list(value: Any) -> Any:
    """A scalar means a one-element list; numbers become text (``level: 1``)."""
    if value is None:
        return value
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, int | float) and not isinstance(item, bool):
            item = str(item)
        out.append(item)
    return out


def _non_empty(values: list[str]) -> list[str]:
    if not values:
        raise _problem("an empty list matches nobody", "give at least one value or drop the key")
    for value in values:
        if not value.strip():
            raise _problem("an empty value matches nobody", "remove it")
    return values


def _language_code(value: str) -> str:
    if not _LANGUAGE.match(value):
        raise _problem(f"{value!r} is not a language code", _LANGUAGE_HINT)
    return value


Names = Annotated[list[str], BeforeValidator(_as_list), AfterValidator(_non_empty)]
Languages = Annotated[
    list[Annotated[str, AfterValidator(_language_code)]],
    BeforeValidator(_as_list),
    AfterValidator(_non_empty),
]
ChatTypes = Annotated[
    list[Literal["private", "group", "supergroup", "channel"]],
    BeforeValidator(_as_list),
    AfterValidator(_non_empty),
]
Id = Annotated[int, Field(gt=0)]


def _text_id(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RouteSpec(_Spec):
    """The ``POST /im/sessions`` parameters."""

    assign_type: Literal["robot", "urobot", "agent"] = "agent"
    agent_id: Id | None = None
    group_id: Id | None = None
    channel: str | None = None
    robot_id: Id | None = None
    scene_id: Id | None = None
    robot_role_id: Annotated[str | None, BeforeValidator(_text_id)] = None

    @model_validator(mode="after")
    def _consistent(self) -> RouteSpec:
        if self.assign_type == "urobot" and (self.robot_id is None or self.scene_id is None):
            missing = [k for k in ("robot_id", "scene_id") if getattr(self, k) is None]
            raise _problem(
                f"an urobot route needs robot_id and scene_id ({', '.join(missing)} missing)",
                "take both from Udesk's robot list, GET /urobot/robots",
            )
        if self.assign_type != "agent" and (self.agent_id or self.group_id):
            raise _problem(
                f"a {self.assign_type} route cannot have agent_id or group_id",
                "Udesk ignores assign_type when either is given and assigns an agent; "
                "remove them, or use assign_type: agent",
            )
        if self.assign_type == "agent" and (self.robot_id or self.scene_id):
            raise _problem(
                "robot_id and scene_id belong to urobot routes",
                "remove them, or use assign_type: urobot",
            )
        return self

    def to_route(self, rule_name: str) -> Route:
        return Route(**self.model_dump(), rule_name=rule_name)


class WhenSpec(_Spec):
    language: Languages | None = None
    start_param: Names | None = None
    level: Names | None = None
    tags: Names | None = None
    chat_type: ChatTypes | None = None

    @model_validator(mode="after")
    def _something(self) -> WhenSpec:
        if not any(getattr(self, k) is not None for k in type(self).model_fields):
            raise _problem(
                "`when` has no condition",
                "give language, start_param, level, tags or chat_type; "
                "to route everyone, change `default` instead",
            )
        return self

    def to_condition(self) -> Condition:
        def fold(values: list[str] | None, how: Any = str.strip) -> tuple[str, ...] | None:
            return None if values is None else tuple(dict.fromkeys(how(v) for v in values))

        return Condition(
            language=fold(self.language, lambda v: v.strip().lower().replace("_", "-")),
            start_param=fold(self.start_param),
            level=fold(self.level, lambda v: v.strip().casefold()),
            tags=fold(self.tags, lambda v: v.strip().casefold()),
            chat_type=fold(self.chat_type),  # type: ignore[arg-type]
        )


class RuleSpec(_Spec):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    when: WhenSpec
    route: RouteSpec


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _problem(
            f"unknown time zone {value!r}", "use an IANA name like Asia/Shanghai or Europe/Moscow"
        ) from None
    return value


def _days(value: str) -> str:
    try:
        parse_days(value)
    except HoursError as exc:
        raise _problem(str(exc), exc.hint) from None
    return value


def _hours_text(value: Any) -> Any:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if value is None:
        return "closed"
    if isinstance(value, int) and not isinstance(value, bool):
        raise _problem("YAML read this time as a number", 'quote the hours: "09:00-18:00"')
    return value


def _ranges(value: str) -> str:
    try:
        _parse_ranges(value)
    except HoursError as exc:
        raise _problem(str(exc), exc.hint) from None
    return value


def _holiday(value: Any) -> Any:
    try:
        parse_holiday(value)
    except HoursError as exc:
        raise _problem(str(exc), exc.hint) from None
    return value


def _tagged(value: Any) -> str:
    return "(route)" if isinstance(value, dict | RouteSpec) else "(action)"


Outside = Annotated[
    Union[  # noqa: UP007 - Tag needs the Union form
        Annotated[Literal["leave_message", "robot", "agent"], Tag("(action)")],
        Annotated[RouteSpec, Tag("(route)")],
    ],
    Discriminator(_tagged),
]


def _robot_only(route: RouteSpec) -> RouteSpec:
    if route.assign_type == "agent":
        raise _problem(
            "no_agent_online cannot lead to an agent route",
            "no agent is online; use leave_message, robot or a robot/urobot route",
        )
    return route


NoAgent = Annotated[
    Union[  # noqa: UP007
        Annotated[Literal["leave_message", "robot"], Tag("(action)")],
        Annotated[RouteSpec, AfterValidator(_robot_only), Tag("(route)")],
    ],
    Discriminator(_tagged),
]


class BusinessHoursSpec(_Spec):
    timezone: Annotated[str, AfterValidator(_timezone)]
    weekly: dict[
        Annotated[str, AfterValidator(_days)],
        Annotated[str, BeforeValidator(_hours_text), AfterValidator(_ranges)],
    ]
    holidays: list[Annotated[dt.date | str, BeforeValidator(_holiday)]] = []
    outside: Outside = "leave_message"

    def build(self) -> tuple[BusinessHours, Route | None]:
        weekly: list[tuple[tuple[int, int], ...]] = [()] * 7
        for days, ranges in self.weekly.items():
            for day in parse_days(days):
                weekly[day] = _parse_ranges(ranges)
        holidays = {d for value in self.holidays for d in parse_holiday(value)}
        outside = self.outside
        name = "outside business hours"
        if isinstance(outside, RouteSpec):
            route: Route | None = outside.to_route(name)
            word = "route"
        else:
            word = outside
            route = Route(assign_type="robot", rule_name=name) if outside == "robot" else None
        built = BusinessHours(ZoneInfo(self.timezone), tuple(weekly), frozenset(holidays), word)
        return built, route


def _duration(value: Any) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise _problem(str(exc), "write a duration like 90s, 10m or 1h") from None
    if seconds <= 0:
        raise _problem("max_wait must be longer than 0", "drop it to wait without limit")
    return seconds


class QueueSpec(_Spec):
    max_wait: Annotated[float, BeforeValidator(_duration)] | None = None


def _text_key(value: str) -> str:
    known = _known_text_keys()
    if value not in known:
        close = difflib.get_close_matches(value, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "see bridge/core/default_texts.yaml"
        raise _problem(f"unknown text {value!r}", hint)
    return value


class RoutingFileSpec(_Spec):
    default: RouteSpec = RouteSpec()
    rules: list[RuleSpec] = []
    business_hours: BusinessHoursSpec | None = None
    no_agent_online: NoAgent = "leave_message"
    queue: QueueSpec | None = None
    texts: dict[
        Annotated[str, AfterValidator(_language_code)],
        dict[Annotated[str, AfterValidator(_text_key)], str],
    ] = {}
    fallback_language: Annotated[str, AfterValidator(_language_code)] = "en"

    @field_validator("fallback_language")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower().replace("_", "-")


# --- reading YAML with lines -------------------------------------------------------------


class _Located:
    """The constructed document plus the line of every key and list item."""

    def __init__(self) -> None:
        self.lines: dict[Path_, int] = {}
        self.paths: dict[Path_, Path_] = {}  # as written (pydantic says 0 for a false key)
        self.duplicates: list[tuple[Path_, int]] = []

    def index(self, loader: yaml.SafeLoader, node: yaml.Node, path: Path_) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue  # the constructor will refuse it with its own message
                line = key_node.start_mark.line + 1
                if key in seen:
                    self.duplicates.append(((*path, key), line))
                seen.add(key)
                self.lines[(*path, key)] = line
                self.paths[(*path, key)] = (*path, key)
                self.index(loader, value_node, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.lines[(*path, i)] = item.start_mark.line + 1
                self.index(loader, item, (*path, i))

    def locate(self, loc: Iterable[Any]) -> tuple[Path_, int]:
        """The deepest part of ``loc`` present in the file, and its line.  Parts that are
        not keys of the file (pydantic's union tags, ``[key]``) are skipped."""
        path: Path_ = ()
        line = self.lines.get((), 1)
        for part in loc:
            candidate = (*path, part)
            if candidate in self.lines:
                path = self.paths.get(candidate, candidate)
                line = self.lines[candidate]
        return path, line


class _Loader(yaml.SafeLoader):
    """SafeLoader, except that an impossible date (2026-02-30) stays text for the validators
    to report with its line, instead of failing the whole file."""

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _yaml_problem(file: Path, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    line = f":{mark.line + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    if "\\t" in problem or "'\\t'" in str(exc):
        hint = "YAML indents with spaces, not tabs"
    elif "mapping values are not allowed" in problem:
        hint = "a value containing ': ' needs quotes, or the indentation is off"
    elif "expected <block end>" in problem or "expected ',' or ']'" in problem:
        hint = "check the indentation and brackets on this line and the one before"
    else:
        hint = "check indentation and quoting"
        if mark is not None:
            hint += f" near column {mark.column + 1}"
    what = problem
    context_mark = getattr(exc, "context_mark", None)
    if context:
        what += f", {context}"
        if context_mark is not None and (mark is None or context_mark.line != mark.line):
            what += f" started on line {context_mark.line + 1}"
    return f"{file}{line}: not valid YAML: {what} ({hint})"


def _where(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, bool):
            part = str(part).lower()
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "top level"


def _annotations(ann: Any) -> list[Any]:
    """Flatten Annotated/Optional/Union into the plain types inside."""
    origin = typing.get_origin(ann)
    if origin is Annotated:
        return _annotations(typing.get_args(ann)[0])
    if origin is Union or origin is types.UnionType:
        return [a for arg in typing.get_args(ann) for a in _annotations(arg)]
    return [ann]


def _allowed_keys(path: Path_) -> list[str]:
    """The keys the model at ``path`` accepts (for "did you mean")."""
    current: list[Any] = [RoutingFileSpec]
    for part in path:
        following: list[Any] = []
        for ann in (a for c in current for a in _annotations(c)):
            origin = typing.get_origin(ann)
            if isinstance(ann, type) and issubclass(ann, BaseModel) and part in ann.model_fields:
                following.append(ann.model_fields[str(part)].annotation)
            elif origin is list and isinstance(part, int):
                following.append(typing.get_args(ann)[0])
            elif origin is dict:
                following.append(typing.get_args(ann)[1])
        current = following or current
    keys: list[str] = []
    for ann in (a for c in current for a in _annotations(c)):
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys += [k for k in ann.model_fields if k not in keys]
    return keys


def _describe(error: dict[str, Any], located: _Located) -> tuple[int, str, str, str]:
    """(line, where, message, hint) for one pydantic error."""
    loc = tuple(error.get("loc") or ())
    path, line = located.locate(loc)
    kind = error["type"]
    value = error.get("input")
    shown = repr(value) if isinstance(value, str | int | float | bool | None) else ""
    hint = ""
    if kind == "extra_forbidden":
        key = loc[-1]
        allowed = _allowed_keys(path[:-1])
        close = difflib.get_close_matches(str(key), allowed, n=1)
        message = f"unknown key {key!r}"
        hint = f"did you mean {close[0]!r}? " if close else ""
        hint += f"allowed here: {', '.join(allowed)}"
        path = path[:-1] if path and path[-1] == key else path
    elif kind == "missing":
        message = f"required key {loc[-1]!r} is missing"
    elif kind == "routing":
        message = str(error["msg"])
        hint = str((error.get("ctx") or {}).get("hint", ""))
    else:
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if isinstance(value, bool) or any(isinstance(p, bool) for p in loc):
            hint = 'YAML reads yes/no/on/off as true/false: quote it, e.g. "no"'
        elif kind == "string_type" and shown:
            hint = "quote it if it is meant as text"
        elif kind in ("model_type", "dict_type", "model_attributes_type"):
            message = "expected a mapping of keys to values"
        elif kind == "literal_error" and isinstance(value, str):
            options = re.findall(r"'([^']*)'", str((error.get("ctx") or {}).get("expected", "")))
            close = difflib.get_close_matches(value, options, n=1)
            hint = f"did you mean {close[0]!r}?" if close else ""
        elif kind == "list_type":
            message = "expected a list"
            hint = "write items as lines starting with '- ', or [a, b]"
        if shown and kind not in ("model_type", "dict_type", "list_type"):
            message += f", got {shown}"
    return line, _where(path), message, hint


def _format(file: Path, line: int, where: str, message: str, hint: str) -> str:
    text = f"{file}:{line}: {where}: {message}"
    return f"{text} ({hint})" if hint else text


# --- checks across values ----------------------------------------------------------------


def _known_text_keys() -> list[str]:
    keys: list[str] = []
    for entries in default_texts().values():
        keys += [k for k in entries if k not in keys]
    return keys


def _text_problems(texts: Any) -> list[tuple[Path_, str, str]]:
    """Placeholders: an override keeps the default's and adds none."""
    problems: list[tuple[Path_, str, str]] = []
    if not isinstance(texts, dict):
        return problems
    defaults = default_texts()
    known = set(_known_text_keys())
    for lang, entries in texts.items():
        if not isinstance(entries, dict):
            continue
        for key, template in entries.items():
            if key not in known or not isinstance(template, str):
                continue
            path: Path_ = ("texts", lang, key)
            base_lang = str(lang).lower().split("-")[0] if isinstance(lang, str) else ""
            default = defaults.get(base_lang, {}).get(key) or defaults["en"].get(key, "")
            try:
                fields = list(string.Formatter().parse(template))
            except ValueError as exc:
                problems.append(
                    (path, f"not a valid template: {exc}", "write {{ and }} for literal braces")
                )
                continue
            if any(name is not None and (name == "" or name.isdigit()) for _, name, _, _ in fields):
                problems.append(
                    (path, "numbered placeholders like {} or {0} cannot be filled", "use names")
                )
                continue
            if any(conv not in (None, "r", "s", "a") for _, name, _, conv in fields if name):
                problems.append((path, "unknown conversion after '!'", "remove it"))
                continue
            have, want = placeholders(template), placeholders(default)
            extra, missing = sorted(have - want), sorted(want - have)
            allowed = ", ".join("{" + p + "}" for p in sorted(want)) or "none"
            if extra:
                names = ", ".join("{" + p + "}" for p in extra)
                problems.append(
                    (path, f"unknown placeholder {names}", f"this text can use: {allowed}")
                )
            if missing:
                names = ", ".join("{" + p + "}" for p in missing)
                problems.append(
                    (path, f"placeholder {names} is missing", f"the default text uses: {allowed}")
                )
    return problems


def _weekly_problems(hours: Any) -> list[tuple[Path_, str, str]]:
    if not isinstance(hours, dict) or not isinstance(hours.get("weekly"), dict):
        return []
    problems: list[tuple[Path_, str, str]] = []
    given: dict[int, str] = {}
    try:
        ranges = [_parse_ranges(_hours_text(v)) for v in hours["weekly"].values()]
    except Exception:  # reported by the model
        ranges = [((0, 1),)]
    if not any(ranges):
        problems.append(
            (
                ("business_hours", "weekly"),
                "no day has open hours, so every customer would be outside them",
                'give at least one day, e.g. mon-fri: "09:00-18:00"; or drop business_hours',
            )
        )
    for spec in hours["weekly"]:
        try:
            days = parse_days(str(spec))
        except HoursError:
            continue  # reported by the model
        for day in days:
            if day in given:
                name = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[day]
                problems.append(
                    (
                        ("business_hours", "weekly", spec),
                        f"{name} is already given by {given[day]!r}",
                        "give each day once; several ranges go in one value: "
                        '"09:00-12:00,13:00-18:00"',
                    )
                )
            else:
                given[day] = str(spec)
    return problems


def _rule_problems(rules: Any) -> list[tuple[Path_, str, str]]:
    if not isinstance(rules, list):
        return []
    problems: list[tuple[Path_, str, str]] = []
    names: dict[str, int] = {}
    for i, rule in enumerate(rules):
        name = rule.get("name") if isinstance(rule, dict) else None
        if not isinstance(name, str):
            continue
        if name in names:
            problems.append(
                (
                    ("rules", i, "name"),
                    f"rule name {name!r} is already used by rules[{names[name]}]",
                    "sessions and the admin API show which rule routed them: make names unique",
                )
            )
        else:
            names[name] = i
    return problems


# --- the entry point ---------------------------------------------------------------------


def parse_routing(text: str, file: Path) -> RoutingConfig:
    """Validate routing YAML; raises RoutingFileError listing every problem."""
    located = _Located()
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # its reader already refuses control characters
        node = loader.get_single_node()
        if node is not None:
            located.index(loader, node, ())
            located.lines[()] = node.start_mark.line + 1
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise RoutingFileError([_yaml_problem(file, exc)], file) from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise RoutingFileError([f"{file}: cannot be read as YAML: {exc}"], file) from None
    finally:
        if loader is not None:
            loader.dispose()

    if data is None:
        raise RoutingFileError(
            [
                f"{file}:1: the routing file is empty "
                "(write at least `default:`, or unset ROUTING_FILE for the built-in default)"
            ],
            file,
        )
    if not isinstance(data, dict):
        line = located.lines.get((), 1)
        raise RoutingFileError(
            [f"{file}:{line}: top level: expected a mapping (default:, rules:, …)"], file
        )

    found: list[tuple[int, str]] = []
    for path, line in located.duplicates:
        found.append(
            (
                line,
                _format(
                    file,
                    line,
                    _where(path),
                    f"key {path[-1]!r} appears twice",
                    "YAML would keep only the last one; remove one",
                ),
            )
        )
    spec: RoutingFileSpec | None = None
    try:
        spec = RoutingFileSpec.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            line, where, message, hint = _describe(dict(error), located)
            found.append((line, _format(file, line, where, message, hint)))
    extra = (
        _text_problems(data.get("texts"))
        + _weekly_problems(data.get("business_hours"))
        + _rule_problems(data.get("rules"))
    )
    for path, message, hint in extra:
        _, line = located.locate(path)
        found.append((line, _format(file, line, _where(path), message, hint)))
    if found or spec is None:
        problems = list(dict.fromkeys(p for _, p in sorted(found, key=lambda f: f[0])))
        raise RoutingFileError(problems or [f"{file}: invalid"], file)
    return _compile(spec, file, located)


def _compile(spec: RoutingFileSpec, file: Path, located: _Located) -> RoutingConfig:
    rules = tuple(
        Rule(
            name=r.name,
            when=r.when.to_condition(),
            route=r.route.to_route(r.name),
            line=located.lines.get(("rules", i)),
        )
        for i, r in enumerate(spec.rules)
    )
    hours, outside_route = spec.business_hours.build() if spec.business_hours else (None, None)
    if isinstance(spec.no_agent_online, RouteSpec):
        no_agent, no_agent_route = "robot", spec.no_agent_online.to_route("no agent online")
    elif spec.no_agent_online == "robot":
        no_agent, no_agent_route = "robot", Route(assign_type="robot", rule_name="no agent online")
    else:
        no_agent, no_agent_route = "leave_message", None
    overrides = {lang.lower().replace("_", "-"): dict(v) for lang, v in spec.texts.items()}
    return RoutingConfig(
        default=spec.default.to_route("default"),
        rules=rules,
        business_hours=hours,
        outside_route=outside_route,
        no_agent_online=no_agent,  # type: ignore[arg-type]
        no_agent_online_route=no_agent_route,
        queue_max_wait=spec.queue.max_wait if spec.queue else None,
        texts=Texts(overrides, fallback=spec.fallback_language),
        fallback_language=spec.fallback_language,
        text_overrides={k: tuple(v) for k, v in overrides.items()},
        source=file,
        loaded_at=dt.datetime.now(dt.UTC),
    )


def load_routing_file(path: Path) -> RoutingConfig:
    """Read and validate the routing file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RoutingFileError([f"{path}: no such file (check ROUTING_FILE)"], path) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise RoutingFileError([f"{path}: cannot read ({reason})"], path) from None
    return parse_routing(text, path)


def load_router(path: Path | str) -> Router:
    """A router from a routing file, able to reload it; raises RoutingFileError listing
    every problem."""
    return Router(load_routing_file(Path(path)), load=load_routing_file)
