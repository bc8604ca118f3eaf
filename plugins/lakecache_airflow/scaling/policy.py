"""The scaling policy: a pure function from (time, cluster state, demand, last action) to a decision and its reasons.

``PolicyConfig.load(path)`` / ``PolicyConfig.from_dict(data)`` validate a configuration once, at load, and refuse
a bad one with a one-line ``PolicyConfigError``: min above max, an unknown time zone, a bad cron, windows that
overlap with different targets. ``config.decide(now, state, demand, last_action)`` then never fails and never
returns a target outside [min_nodes, max_nodes]. A configuration (TOML)::

    min_nodes = 1
    max_nodes = 12
    timezone = "Europe/Paris"      # for windows that name none
    cooldown = "10m"               # between two changes
    scale_in_cooldown = "30m"      # before a scale-in (after any change)
    hysteresis = 0.25              # scale in only if the smaller cluster keeps 25% headroom
    max_step = 4                   # nodes added or removed per change
    scale_lead = "10m"             # a window's target applies this long before it opens (nodes boot)
    warmup_lead = "30m"            # ask for the cache warmup of a window this long before it opens
    dry_run = false

    [reactive]
    enabled = true
    cores_per_node = 4
    target_utilization = 0.8
    app_cores = 4                  # cores a waiting application is assumed to ask for
    cache_pressure = true          # a cache above its high watermark adds a node and blocks scale-in

    [[windows]]
    name = "morning-etl"
    days = "mon-fri"               # or ["mon", "wed"], or "daily"
    start = "06:00"
    end = "09:30"                  # an end before the start crosses midnight
    target = 10
    warmup = ["/warehouse/events"]

    [[windows]]
    name = "month-end"
    cron = "0 18 28-31 * *"        # when it opens (minute hour day-of-month month day-of-week)
    duration = "6h"
    timezone = "America/New_York"
    target = 8

Windows are wall-clock times in their time zone: on a DST change a 06:00-09:30 window still opens at 06:00 local
time, and a start that does not exist that day (02:30 when clocks jump from 02:00 to 03:00) opens it at 03:00.
Tables ``[backend]`` and ``[demand]`` belong to ``clusterctl`` and the operator; the policy ignores them.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lakecache_airflow.scaling.base import ClusterState
from lakecache_airflow.scaling.demand import Demand

Action = Literal["scale_out", "scale_in", "hold"]

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron numbering: Sunday is 0 (and 7)
MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
#: Sections of a configuration file that belong to others (``clusterctl``, the operator).
FOREIGN_SECTIONS = frozenset({"backend", "demand"})
#: Warmup keys remembered in ``LastAction``: enough for every window of a few days.
WARMED_KEPT = 32
_MINUTE = timedelta(minutes=1)
# Overlaps are searched over two years starting on a Monday, a leap year included: every weekday, day of month
# and month combination a window can use occurs in it.
_OVERLAP_FROM = date(2027, 1, 4)
_OVERLAP_DAYS = 731


class PolicyConfigError(ValueError):
    """A policy configuration was refused at load; the message names the field and fits on one line."""


# --- durations, times, cron --------------------------------------------------------------------------------------

_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(value: Any, where: str) -> timedelta:
    """``"10m"``, ``"1h30m"``, ``"45s"`` or a number of seconds as a ``timedelta``. Raises ``PolicyConfigError``."""
    if isinstance(value, bool):
        raise PolicyConfigError(f"{where}: a duration like '10m' or '1h30m', not {value!r}")
    if isinstance(value, int | float):
        if value < 0 or not math.isfinite(value):
            raise PolicyConfigError(f"{where}: a duration must be 0 or more, not {value!r}")
        return timedelta(seconds=value)
    text = str(value).strip().lower().replace(" ", "")
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise PolicyConfigError(f"{where}: a duration like '10m' or '1h30m', not {value!r}")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """``timedelta(minutes=90)`` as ``"1h30m"``."""
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{seconds}s" if seconds else "")
    return text or "0m"


def _clock(value: Any, where: str) -> time:
    text = str(value).strip()
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise PolicyConfigError(f"{where}: a time of day as HH:MM (00:00 to 23:59), not {value!r}")
    return time(int(match[1]), int(match[2]))


def _zone(name: Any, where: str) -> ZoneInfo:
    if not isinstance(name, str) or not name.strip():
        raise PolicyConfigError(f"{where}: an IANA time zone name like 'Europe/Paris', not {name!r}")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise PolicyConfigError(f"{where}: unknown time zone {name!r} (use an IANA name like 'Europe/Paris')") from None


@dataclass(frozen=True)
class CronSpec:
    """A five-field cron expression (minute hour day-of-month month day-of-week) as sets of values.

    As in cron, when both day fields are restricted a day matches if either does. Day-of-week 0 and 7 are
    Sunday; names (``mon``, ``jan``) and ranges, lists and steps (``1-5``, ``mon,wed``, ``*/15``) are accepted.
    """

    source: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_any: bool
    weekdays_any: bool

    @classmethod
    def parse(cls, text: str) -> CronSpec:
        """Parse ``text``; raises ``ValueError`` saying which field is wrong and why."""
        fields = str(text).split()
        if len(fields) != 5:
            raise ValueError(f"a cron has 5 fields (minute hour day-of-month month day-of-week), not {len(fields)}")
        minutes = _cron_field(fields[0], "minute", 0, 59, ())
        hours = _cron_field(fields[1], "hour", 0, 23, ())
        days = _cron_field(fields[2], "day-of-month", 1, 31, ())
        months = _cron_field(fields[3], "month", 1, 12, MONTH_NAMES, first=1)
        weekdays = frozenset(d % 7 for d in _cron_field(fields[4], "day-of-week", 0, 7, DAY_NAMES))
        return cls(
            source=" ".join(fields),
            minutes=minutes,
            hours=hours,
            days=days,
            months=months,
            weekdays=weekdays,
            days_any=fields[2] in ("*", "?"),
            weekdays_any=fields[4] in ("*", "?"),
        )

    def matches(self, moment: datetime) -> bool:
        """True if ``moment`` (its wall-clock fields; seconds ignored) is one of this cron's minutes."""
        if moment.minute not in self.minutes or moment.hour not in self.hours or moment.month not in self.months:
            return False
        return self.matches_day(moment.date())

    def matches_day(self, day: date) -> bool:
        """True if the cron fires on ``day`` at all (its day-of-month, month and day-of-week fields)."""
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.weekday() + 1) % 7 in self.weekdays
        if self.days_any or self.weekdays_any:
            return in_month and in_week
        return in_month or in_week


def _cron_value(token: str, name: str, low: int, high: int, names: Sequence[str], first: int) -> int:
    token = token.strip().lower()
    if token in names:
        return names.index(token) + first
    if not token.isdigit():
        raise ValueError(f"{name} {token!r} is not a number" + (f" or a name ({names[0]}...)" if names else ""))
    value = int(token)
    if not low <= value <= high:
        raise ValueError(f"{name} {value} is out of {low}-{high}")
    return value


def _cron_field(text: str, name: str, low: int, high: int, names: Sequence[str], *, first: int = 0) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"{name} step {step_text!r} is not a positive number")
            step = int(step_text)
        if base in ("*", "?"):
            start, end = low, high
        elif "-" in base:
            left, right = base.split("-", 1)
            start = _cron_value(left, name, low, high, names, first)
            end = _cron_value(right, name, low, high, names, first)
            if start > end:
                raise ValueError(f"{name} range {base!r} runs backwards")
        else:
            start = _cron_value(base, name, low, high, names, first)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _days_cron(value: Any, where: str) -> str:
    """The day-of-week cron field of ``days = "mon-fri"`` / ``["sat", "sun"]`` / ``"fri-mon"`` / ``"daily"``."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("daily", "*", "every day", "all"):
            return "*"
        parts = [p.strip() for p in text.split(",")]
    elif isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        parts = [v.strip().lower() for v in value]
    else:
        raise PolicyConfigError(f"{where}: days like 'mon-fri', ['sat', 'sun'] or 'daily', not {value!r}")
    days: set[int] = set()
    for part in parts:
        ends = [_day_number(d.strip(), where) for d in part.split("-")]
        if len(ends) == 1:
            days.add(ends[0])
        elif len(ends) == 2:
            first, last = ends
            # "fri-mon" wraps around the weekend
            days.update(range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)])
        else:
            raise PolicyConfigError(f"{where}: {part!r} is not a day or a range of days like 'mon-fri'")
    return ",".join(str(d) for d in sorted(days))


def _day_number(text: str, where: str) -> int:
    """Cron's number (Sunday 0) of ``mon`` / ``monday``."""
    long_names = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
    if text in DAY_NAMES:
        return DAY_NAMES.index(text)
    if text in long_names:
        return long_names.index(text)
    raise PolicyConfigError(f"{where}: {text!r} is not a day (mon, tue, wed, thu, fri, sat, sun)")


def _days_text(field: str) -> str:
    """``"1,2,3,4,5"`` as ``"mon-fri"`` and ``"0,6"`` as ``"sat-sun"``, for messages."""
    if field == "*":
        return "daily"
    # Weeks start on Monday here, so that a weekend reads as one run.
    order = sorted((int(d) - 1) % 7 for d in field.split(","))
    runs: list[list[int]] = []
    for index in order:
        if runs and index == runs[-1][-1] + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    name = [DAY_NAMES[(i + 1) % 7] for i in range(7)]
    return ",".join(name[r[0]] if len(r) == 1 else f"{name[r[0]]}-{name[r[-1]]}" for r in runs)


# --- windows -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A peak window: from each time ``cron`` fires (wall clock in ``timezone``) and for ``duration``, run at
    least ``target`` nodes, and warm up ``warmup`` paths in the cache before it opens.
    """

    name: str
    target: int
    cron: CronSpec
    duration: timedelta
    timezone: str
    warmup: tuple[str, ...] = ()
    described: str = ""

    @property
    def zone(self) -> ZoneInfo:
        """The window's time zone."""
        return ZoneInfo(self.timezone)

    def opened_at(self, moment: datetime) -> datetime | None:
        """The wall-clock start (naive, in the window's zone) of the occurrence open at ``moment``, or None."""
        wall = _wall(moment, self.zone)
        steps = max(int(self.duration / _MINUTE), 1)
        for back in range(steps):
            start = wall - back * _MINUTE
            if self.cron.matches(start):
                return start
        return None

    def opens_within(self, moment: datetime, lead: timedelta) -> datetime | None:
        """The wall-clock start of the next occurrence opening after ``moment`` and within ``lead``, or None."""
        wall = _wall(moment, self.zone)
        for ahead in range(1, int(lead / _MINUTE) + 1):
            start = wall + ahead * _MINUTE
            if self.cron.matches(start):
                return start
        return None

    def key(self, start: datetime) -> str:
        """The identity of one occurrence (``name@2026-11-23T06:00``), to warm it up once."""
        return f"{self.name}@{start.strftime('%Y-%m-%dT%H:%M')}"

    def occurrences(self, first: date, days: int) -> Iterator[tuple[datetime, datetime]]:
        """(start, end) in UTC of every occurrence starting on the ``days`` days from ``first`` (local dates)."""
        zone = self.zone
        for offset in range(days):
            day = first + timedelta(days=offset)
            if not self.cron.matches_day(day):
                continue
            for hour in sorted(self.cron.hours):
                for minute in sorted(self.cron.minutes):
                    start = datetime.combine(day, time(hour, minute))
                    yield _absolute(start, zone), _absolute(start + self.duration, zone)


def _wall(moment: datetime, zone: ZoneInfo) -> datetime:
    """``moment`` as a naive wall-clock time in ``zone``, to the minute."""
    return moment.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)


def _absolute(wall: datetime, zone: ZoneInfo) -> datetime:
    return wall.replace(tzinfo=zone).astimezone(UTC)


def _overlap(a: Window, b: Window) -> datetime | None:
    """The first moment (UTC) both windows are open, or None."""
    left = sorted(a.occurrences(_OVERLAP_FROM, _OVERLAP_DAYS))
    right = sorted(b.occurrences(_OVERLAP_FROM, _OVERLAP_DAYS))
    i = j = 0
    while i < len(left) and j < len(right):
        (a_start, a_end), (b_start, b_end) = left[i], right[j]
        if a_start < b_end and b_start < a_end:
            return max(a_start, b_start)
        if a_end <= b_end:
            i += 1
        else:
            j += 1
    return None


# --- configuration -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReactiveConfig:
    """The reactive part: size the cluster for the cores in use and waiting, and for cache pressure."""

    enabled: bool = True
    cores_per_node: int = 4
    target_utilization: float = 0.8
    app_cores: int = 4
    cache_pressure: bool = True


@dataclass(frozen=True)
class PolicyConfig:
    """A validated policy: bounds, pacing (cooldowns, hysteresis, step), peak windows and the reactive part."""

    min_nodes: int
    max_nodes: int
    timezone: str = "UTC"
    cooldown: timedelta = timedelta(minutes=10)
    scale_in_cooldown: timedelta = timedelta(minutes=30)
    hysteresis: float = 0.25
    max_step: int = 4
    scale_lead: timedelta = timedelta(minutes=10)
    warmup_lead: timedelta = timedelta(minutes=30)
    dry_run: bool = False
    reactive: ReactiveConfig = field(default_factory=ReactiveConfig)
    windows: tuple[Window, ...] = ()

    @classmethod
    def load(cls, path: str | Path) -> PolicyConfig:
        """Read and validate the TOML file at ``path``. Raises ``PolicyConfigError``."""
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise PolicyConfigError(f"{path}: no such policy file") from None
        except OSError as exc:
            raise PolicyConfigError(f"{path}: cannot read it: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise PolicyConfigError(f"{path}: not valid TOML: {exc}") from None
        try:
            return cls.from_dict(data)
        except PolicyConfigError as exc:
            raise PolicyConfigError(f"{path}: {exc}") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyConfig:
        """Validate ``data`` (a parsed TOML file, or the same as a dict). Raises ``PolicyConfigError``."""
        if not isinstance(data, Mapping):
            raise PolicyConfigError(f"a policy is a table of settings, not {type(data).__name__}")
        known = {f for f in cls.__dataclass_fields__} | FOREIGN_SECTIONS
        _refuse_unknown(data, known, "policy")
        if "min_nodes" not in data or "max_nodes" not in data:
            raise PolicyConfigError("min_nodes and max_nodes are required")
        min_nodes = _count(data["min_nodes"], "min_nodes", low=0)
        max_nodes = _count(data["max_nodes"], "max_nodes", low=1)
        if min_nodes > max_nodes:
            raise PolicyConfigError(f"min_nodes ({min_nodes}) is above max_nodes ({max_nodes})")
        timezone = data.get("timezone", "UTC")
        _zone(timezone, "timezone")
        cooldown = parse_duration(data.get("cooldown", "10m"), "cooldown")
        if "scale_in_cooldown" in data:
            scale_in_cooldown = parse_duration(data["scale_in_cooldown"], "scale_in_cooldown")
        else:
            scale_in_cooldown = max(cooldown, timedelta(minutes=30))
        if scale_in_cooldown < cooldown:
            raise PolicyConfigError(
                f"scale_in_cooldown ({format_duration(scale_in_cooldown)}) is shorter than cooldown "
                f"({format_duration(cooldown)}): a scale-in is never allowed sooner than any change"
            )
        hysteresis = _number(data.get("hysteresis", 0.25), "hysteresis")
        if not 0 <= hysteresis < 1:
            raise PolicyConfigError(f"hysteresis must be in [0, 1), not {hysteresis}")
        dry_run = data.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise PolicyConfigError(f"dry_run must be true or false, not {dry_run!r}")
        config = cls(
            min_nodes=min_nodes,
            max_nodes=max_nodes,
            timezone=str(timezone).strip(),
            cooldown=cooldown,
            scale_in_cooldown=scale_in_cooldown,
            hysteresis=hysteresis,
            max_step=_count(data.get("max_step", 4), "max_step", low=1),
            scale_lead=parse_duration(data.get("scale_lead", "10m"), "scale_lead"),
            warmup_lead=parse_duration(data.get("warmup_lead", "30m"), "warmup_lead"),
            dry_run=dry_run,
            reactive=_reactive(data.get("reactive", {})),
        )
        windows = data.get("windows", [])
        if not isinstance(windows, list):
            raise PolicyConfigError("windows must be a list of tables ([[windows]])")
        config = replace(config, windows=tuple(_window(w, i, config) for i, w in enumerate(windows)))
        _refuse_conflicts(config.windows)
        return config

    def decide(
        self,
        now: datetime,
        state: ClusterState,
        demand: Demand | None,
        last_action: LastAction | None = None,
        *,
        dry_run: bool | None = None,
    ) -> Decision:
        """The decision for ``now`` (timezone-aware): a target in [min_nodes, max_nodes], the action, the reasons.

        ``state.desired`` is the size the decision starts from. ``demand`` None (or with unknown cores) makes the
        reactive part hold rather than scale in blind. ``last_action`` paces changes (cooldowns) and says which
        window occurrences were already warmed up. ``dry_run`` overrides the configuration's. Raises
        ``ValueError`` only for a naive ``now``.
        """
        return _decide(self, now, state, demand, last_action, self.dry_run if dry_run is None else dry_run)


def _refuse_unknown(data: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise PolicyConfigError(f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})")


def _count(value: Any, where: str, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyConfigError(f"{where} must be a whole number, not {value!r}")
    if value < low:
        raise PolicyConfigError(f"{where} must be at least {low}, not {value}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PolicyConfigError(f"{where} must be a number, not {value!r}")
    return float(value)


def _reactive(data: Any) -> ReactiveConfig:
    if not isinstance(data, Mapping):
        raise PolicyConfigError("reactive must be a table ([reactive])")
    _refuse_unknown(data, ReactiveConfig.__dataclass_fields__, "reactive")
    enabled, pressure = data.get("enabled", True), data.get("cache_pressure", True)
    for name, flag in (("enabled", enabled), ("cache_pressure", pressure)):
        if not isinstance(flag, bool):
            raise PolicyConfigError(f"reactive.{name} must be true or false, not {flag!r}")
    utilization = _number(data.get("target_utilization", 0.8), "reactive.target_utilization")
    if not 0 < utilization <= 1:
        raise PolicyConfigError(f"reactive.target_utilization must be in (0, 1], not {utilization}")
    return ReactiveConfig(
        enabled=enabled,
        cores_per_node=_count(data.get("cores_per_node", 4), "reactive.cores_per_node", low=1),
        target_utilization=utilization,
        app_cores=_count(data.get("app_cores", 4), "reactive.app_cores", low=1),
        cache_pressure=pressure,
    )


_WINDOW_KEYS = frozenset({"name", "target", "days", "start", "end", "cron", "duration", "timezone", "warmup"})


def _window(data: Any, index: int, config: PolicyConfig) -> Window:
    if not isinstance(data, Mapping):
        raise PolicyConfigError(f"windows[{index}] must be a table")
    name = data.get("name")
    where = f"window {name!r}" if isinstance(name, str) and name.strip() else f"windows[{index}]"
    if not isinstance(name, str) or not name.strip():
        raise PolicyConfigError(f"{where}: a name is required")
    _refuse_unknown(data, _WINDOW_KEYS, where)
    if "target" not in data:
        raise PolicyConfigError(f"{where}: a target (nodes while it is open) is required")
    target = _count(data["target"], f"{where}: target", low=0)
    if not config.min_nodes <= target <= config.max_nodes:
        raise PolicyConfigError(
            f"{where}: target {target} is outside [min_nodes, max_nodes] = [{config.min_nodes}, {config.max_nodes}]"
        )
    timezone = _zone(data.get("timezone", config.timezone), f"{where}: timezone").key
    by_clock = any(k in data for k in ("days", "start", "end"))
    if by_clock and ("cron" in data or "duration" in data):
        raise PolicyConfigError(f"{where}: give either days/start/end or cron/duration, not both")
    if by_clock:
        if "start" not in data or "end" not in data:
            raise PolicyConfigError(f"{where}: start and end (HH:MM) are required")
        start, end = _clock(data["start"], f"{where}: start"), _clock(data["end"], f"{where}: end")
        if start == end:
            raise PolicyConfigError(f"{where}: start and end are both {start:%H:%M}: the window would be empty")
        days = _days_cron(data.get("days", "daily"), f"{where}: days")
        cron_text = f"{start.minute} {start.hour} * * {days}"
        minutes = (end.hour * 60 + end.minute - start.hour * 60 - start.minute) % (24 * 60)
        duration = timedelta(minutes=minutes)
        described = f"{_days_text(days)} {start:%H:%M}-{end:%H:%M} {timezone}"
    else:
        if "cron" not in data or "duration" not in data:
            raise PolicyConfigError(f"{where}: give days/start/end, or a cron and a duration")
        cron_text = str(data["cron"])
        duration = parse_duration(data["duration"], f"{where}: duration")
        if duration < _MINUTE:
            raise PolicyConfigError(f"{where}: duration must be at least 1m")
        described = f"cron '{cron_text}' for {format_duration(duration)} {timezone}"
    try:
        cron = CronSpec.parse(cron_text)
    except ValueError as exc:
        raise PolicyConfigError(f"{where}: bad cron {cron_text!r}: {exc}") from None
    warmup = data.get("warmup", [])
    if isinstance(warmup, str):
        warmup = [warmup]
    if not isinstance(warmup, list) or not all(isinstance(p, str) and p.strip().startswith("/") for p in warmup):
        raise PolicyConfigError(f"{where}: warmup must be a list of cache paths starting with '/', not {warmup!r}")
    return Window(
        name=name.strip(),
        target=target,
        cron=cron,
        duration=duration,
        timezone=timezone,
        warmup=tuple(p.strip() for p in warmup),
        described=described,
    )


def _refuse_conflicts(windows: Sequence[Window]) -> None:
    names = [w.name for w in windows]
    for name in names:
        if names.count(name) > 1:
            raise PolicyConfigError(f"two windows are named {name!r}")
    for i, a in enumerate(windows):
        for b in windows[i + 1 :]:
            if a.target == b.target:
                continue  # overlapping windows that agree are harmless
            clash = _overlap(a, b)
            if clash is not None:
                at = clash.astimezone(a.zone)
                raise PolicyConfigError(
                    f"windows {a.name!r} (target {a.target}) and {b.name!r} (target {b.target}) overlap, "
                    f"e.g. at {at:%a %Y-%m-%d %H:%M} {a.timezone}: give them the same target or move one"
                )


# --- decisions -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LastAction:
    """What the policy remembers between evaluations: the last change applied, and the warmups asked for."""

    at: datetime | None = None
    target: int | None = None
    warmed: tuple[str, ...] = ()

    def after(self, decision: Decision, *, applied: bool, warmed: bool) -> LastAction:
        """The record once ``decision`` was handled: ``applied`` if its change was made, ``warmed`` if its warmup
        was started.
        """
        at, target = self.at, self.target
        if applied and decision.action != "hold":
            at, target = decision.at, decision.target
        keys = self.warmed
        if warmed and decision.warmup_keys:
            keys = tuple(k for k in keys if k not in decision.warmup_keys) + decision.warmup_keys
        return LastAction(at=at, target=target, warmed=keys[-WARMED_KEPT:])

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for an Airflow Variable or a state file)."""
        return {"at": self.at.isoformat() if self.at else None, "target": self.target, "warmed": list(self.warmed)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> LastAction | None:
        """The record saved by ``to_json``; None for nothing saved. Raises ``ValueError`` for a damaged one."""
        if not data:
            return None
        at = data.get("at")
        moment = datetime.fromisoformat(at) if at else None
        if moment is not None and moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        target = data.get("target")
        return cls(
            at=moment,
            target=int(target) if target is not None else None,
            warmed=tuple(str(k) for k in data.get("warmed") or ()),
        )


@dataclass(frozen=True)
class Decision:
    """What the policy decided at ``at``: go from ``current`` to ``target`` nodes (``action``), and why.

    ``warmup`` lists the cache paths to warm up now (windows about to open), None when there is nothing to warm;
    ``warmup_keys`` identify those window occurrences. ``dry_run`` says the decision must only be reported.
    """

    at: datetime
    current: int
    target: int
    action: Action
    reasons: tuple[str, ...]
    warmup: tuple[str, ...] | None = None
    warmup_keys: tuple[str, ...] = ()
    windows: tuple[str, ...] = ()
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what the operator pushes to XCom)."""
        return {
            "at": self.at.isoformat(),
            "current": self.current,
            "target": self.target,
            "action": self.action,
            "reasons": list(self.reasons),
            "warmup": list(self.warmup) if self.warmup is not None else None,
            "warmup_keys": list(self.warmup_keys),
            "windows": list(self.windows),
            "dry_run": self.dry_run,
        }

    def summary(self) -> str:
        """One line: ``scale_out 2 -> 6 (dry run)``."""
        return f"{self.action} {self.current} -> {self.target}" + (" (dry run)" if self.dry_run else "")


def _decide(
    config: PolicyConfig,
    now: datetime,
    state: ClusterState,
    demand: Demand | None,
    last: LastAction | None,
    dry_run: bool,
) -> Decision:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (datetime.now(UTC))")
    current = max(int(state.desired), 0)
    low, high = config.min_nodes, config.max_nodes
    reasons: list[str] = []

    # 1. The schedule: the largest target among the windows open (or about to open, by scale_lead).
    floor, open_names = low, []
    for window in config.windows:
        opened = window.opened_at(now)
        soon = None if opened is not None else window.opens_within(now, config.scale_lead)
        if opened is None and soon is None:
            continue
        open_names.append(window.name)
        floor = max(floor, window.target)
        if opened is not None:
            reasons.append(f"window {window.name!r} ({window.described}) is open: at least {window.target} nodes")
        else:
            assert soon is not None
            reasons.append(
                f"window {window.name!r} ({window.described}) opens at {soon:%H:%M}, within the scale lead of "
                f"{format_duration(config.scale_lead)}: at least {window.target} nodes"
            )
    if not open_names:
        reasons.append(f"no peak window is open: the schedule asks for min_nodes = {low}")

    # 2. The reactive part: nodes for the cores in use and waiting; out at the target utilization, in only with
    #    the hysteresis margin on top, so that a load between the two thresholds changes nothing.
    need_out, need_in = floor, floor
    reactive = config.reactive
    if not reactive.enabled:
        reasons.append("reactive scaling is off: the schedule alone decides")
    else:
        used = demand.used_cores if demand is not None else None
        if used is None:
            used = state.cores_used
        if demand is None or used is None:
            need_in = max(need_in, current)
            reasons.append("no demand data (Spark master unreadable): holding rather than scaling in blind")
        else:
            waiting = demand.waiting_cores
            if waiting is None:
                waiting = demand.waiting_apps * reactive.app_cores
            load = used + waiting
            per_node = reactive.cores_per_node * reactive.target_utilization
            out = math.ceil(load / per_node - 1e-9)
            inward = math.ceil(load * (1 + config.hysteresis) / per_node - 1e-9)
            need_out, need_in = max(need_out, out), max(need_in, inward)
            reasons.append(
                f"{used} cores busy + {waiting} waiting ({demand.waiting_apps} application"
                f"{'' if demand.waiting_apps == 1 else 's'} waiting) = {load} cores: {out} nodes of "
                f"{reactive.cores_per_node} cores at {reactive.target_utilization:.0%} utilization"
                + (f", {inward} to scale in with {config.hysteresis:.0%} hysteresis" if inward != out else "")
            )
        if reactive.cache_pressure and demand is not None and demand.cache_pressure:
            fill, mark = demand.cache_fill or 0.0, demand.cache_high_watermark or 0.0
            need_out, need_in = max(need_out, current + 1), max(need_in, current)
            reasons.append(
                f"cache at {fill:.0%} of capacity, at or above its high watermark {mark:.0%}: one more node "
                f"(its cache capacity with it), no scale-in"
            )
        if demand is not None:
            reasons.extend(demand.notes)

    if need_out > current:
        wanted = need_out
    elif need_in < current:
        wanted = need_in
    else:
        wanted = current
        if need_out < current:
            reasons.append(f"{need_out} nodes would do but {need_in} keep the hysteresis margin: holding at {current}")

    # 3. Bounds, always; then cooldowns and the step limit for changes from within the bounds.
    bounded = min(max(wanted, low), high)
    if wanted > high:
        reasons.append(f"capped at max_nodes = {high} ({wanted} wanted)")
    elif wanted < low:
        reasons.append(f"raised to min_nodes = {low}")
    target = bounded
    if not low <= current <= high:
        reasons.append(f"{current} nodes is outside [min_nodes, max_nodes] = [{low}, {high}]: corrected at once")
    elif bounded != current:
        target = _paced(config, now, current, bounded, last, reasons)

    warmup, keys = _warmups(config, now, last)
    if warmup is not None:
        reasons.append(f"warm up the cache for {', '.join(keys)}: {', '.join(warmup)}")
    action: Action = "scale_out" if target > current else "scale_in" if target < current else "hold"
    if dry_run:
        reasons.append("dry run: nothing is changed")
    return Decision(
        at=now,
        current=current,
        target=target,
        action=action,
        reasons=tuple(reasons),
        warmup=warmup,
        warmup_keys=keys,
        windows=tuple(open_names),
        dry_run=dry_run,
    )


def _paced(
    config: PolicyConfig, now: datetime, current: int, wanted: int, last: LastAction | None, reasons: list[str]
) -> int:
    """``wanted`` as far as the cooldowns and the step limit allow from ``current`` (both within bounds)."""
    inward = wanted < current
    wait = config.scale_in_cooldown if inward else config.cooldown
    if last is not None and last.at is not None:
        since = now - last.at
        if since < wait:
            allowed = last.at + wait
            reasons.append(
                f"cooldown: the last change was at {last.at.astimezone(UTC):%Y-%m-%d %H:%M} UTC; "
                f"{'a scale-in' if inward else 'a change'} is allowed from {allowed.astimezone(UTC):%H:%M} UTC "
                f"({format_duration(wait)} after it): holding at {current} instead of {wanted}"
            )
            return current
    step = wanted - current
    if abs(step) > config.max_step:
        limited = current + (config.max_step if step > 0 else -config.max_step)
        reasons.append(f"step limit: {abs(step)} nodes at once is more than max_step = {config.max_step}: {limited}")
        return limited
    return wanted


def _warmups(
    config: PolicyConfig, now: datetime, last: LastAction | None
) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """Paths to warm up now and their occurrence keys: windows opening within warmup_lead (or open), not yet warmed.

    An open window that was never warmed (the policy started mid-window) is warmed late rather than not at all.
    """
    done = set(last.warmed) if last is not None else set()
    paths: list[str] = []
    keys: list[str] = []
    for window in config.windows:
        if not window.warmup:
            continue
        start = window.opened_at(now) or window.opens_within(now, config.warmup_lead)
        if start is None or window.key(start) in done:
            continue
        keys.append(window.key(start))
        paths.extend(p for p in window.warmup if p not in paths)
    return (tuple(paths) if paths else None), tuple(keys)
