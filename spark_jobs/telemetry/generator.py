"""A day of raw game telemetry as JSON lines, with the defects real clients send, for the raw zone in S3.

Players' activity follows a Zipf law (a few grinders and whales, a long tail seen once), each player keeps one
platform, country and client version, and play comes in sessions: ``session_start``, matches, level-ups, ads and
purchases (by paying players only), then ``session_end`` with the session's length. Sessions start more often in the
evening (UTC) than at night.

A ``defect_rate`` share of the lines is broken on purpose, one defect per line, in the mix ``DEFECT_MIX``:

- ``duplicate``: an exact copy of a good line, arriving a little later (a client retrying an upload);
- ``missing_required``: a required field null or absent;
- ``clock_skew``: a timestamp days ahead or on the previous day, beyond the accepted grace;
- ``malformed``: a truncated line or text that is not JSON at all;
- ``bad_type``: a typed field of the wrong type (``"player_id": "p-123"``, ``"amount": "4.99 USD"``, an epoch ``ts``).

The same arguments always give the same lines. Everything per event is computed with numpy; only the final string
formatting runs per line, in chunks, so a million events take a few seconds and little memory::

    python -m spark_jobs.telemetry.generator --date 2026-11-23 --events 1000000 \\
        --endpoint-url http://127.0.0.1:5000 --bucket lake --prefix raw/events
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from spark_jobs.telemetry import COUNTRIES, EVENT_TYPES, PLATFORMS, REQUIRED_BY_TYPE, REQUIRED_FIELDS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class Defect(StrEnum):
    """What is wrong with a generated line on purpose."""

    DUPLICATE = "duplicate"
    MISSING_REQUIRED = "missing_required"
    CLOCK_SKEW = "clock_skew"
    MALFORMED = "malformed"
    BAD_TYPE = "bad_type"


DEFECT_MIX = {
    Defect.DUPLICATE: 0.30,
    Defect.MISSING_REQUIRED: 0.20,
    Defect.CLOCK_SKEW: 0.20,
    Defect.MALFORMED: 0.15,
    Defect.BAD_TYPE: 0.15,
}
DEFAULT_DEFECT_RATE = 0.02

# s > 1: a heavy head (the busiest 1% of players play a large share of the sessions) and a long tail.
ZIPF_EXPONENT = 1.1
EVENTS_PER_SESSION = 12  # mean, start and end included
EVENTS_PER_PLAYER = 40  # sets the player base for a given volume: 1M events -> 25k players
PLATFORM_WEIGHTS = (0.45, 0.30, 0.15, 0.10)
CLIENT_VERSIONS = ("2.4.1", "2.4.0", "2.3.7")
CLIENT_VERSION_WEIGHTS = (0.70, 0.22, 0.08)
PAYER_SHARE = 0.06
PRICES = (0.99, 1.99, 4.99, 9.99, 19.99, 49.99, 99.99)
PRICE_WEIGHTS = (0.35, 0.25, 0.18, 0.12, 0.06, 0.03, 0.01)
# Between start and end of a session; "purchase" draws of non-paying players become ad views.
MIDDLE_TYPES = ("match_start", "match_end", "level_up", "ad_view", "purchase")
MIDDLE_WEIGHTS = (0.32, 0.31, 0.10, 0.22, 0.05)
# Share of sessions starting in each UTC hour: quiet at night, busiest in the evening.
HOURLY_PROFILE = np.array([2, 1.5, 1, 1, 1, 1.5, 2, 3, 3.5, 4, 4, 4.5, 5, 5, 5, 5, 5.5, 6, 7, 8, 8.5, 8, 6, 4])
SESSION_MEDIAN_S = 900.0
SESSION_SIGMA = 0.9
SESSION_MIN_S, SESSION_MAX_S = 30, 4 * 3600
CHUNK = 65_536  # lines formatted at a time: bounds the memory of the string step


@dataclass(frozen=True)
class _Day:
    """Every generated event of a day as columns, plus the defect plan; lines are formatted from it lazily."""

    day: date
    player_id: np.ndarray  # per event
    session_id: np.ndarray  # per event: index into session_hex
    event_type: np.ndarray  # per event: index into EVENT_TYPES
    platform: np.ndarray  # per event: index into PLATFORMS
    country: np.ndarray  # per event: index into COUNTRIES
    client_version: np.ndarray  # per event: index into CLIENT_VERSIONS
    ts_ms: np.ndarray  # per event, epoch milliseconds
    amount: np.ndarray  # per event, NaN unless a purchase
    duration_s: np.ndarray  # per event, -1 unless a session_end
    event_hex: str  # 32 hex digits per event, concatenated
    session_hex: str  # 16 hex digits per session, concatenated
    defect: np.ndarray  # per event: index into DEFECTS_IN_PLACE + 1, 0 for a good event
    defect_u: np.ndarray  # per event, two uniforms steering how its defect looks
    order: np.ndarray  # arrival order of all lines: < events is an event, >= events a duplicate of dup_source
    dup_source: np.ndarray


DEFECTS_IN_PLACE = (Defect.MISSING_REQUIRED, Defect.CLOCK_SKEW, Defect.MALFORMED, Defect.BAD_TYPE)


def _defect_counts(lines: int, defect_rate: float) -> dict[Defect, int]:
    """Lines of each defect kind: ``defect_rate`` of ``lines`` in ``DEFECT_MIX`` shares, at least one of each."""
    if defect_rate <= 0 or lines == 0:
        return dict.fromkeys(DEFECT_MIX, 0)
    counts = {kind: max(1, round(lines * defect_rate * share)) for kind, share in DEFECT_MIX.items()}
    # A tiny day cannot hold one of each and still have good lines to copy and break.
    if sum(counts.values()) > lines // 2:
        raise ValueError(f"{lines} lines are too few for defect rate {defect_rate}; generate at least 20 lines")
    return counts


def _plan_day(day: date, events: int, seed: int, defect_rate: float) -> _Day:
    rng = np.random.default_rng(seed)
    counts = _defect_counts(events, defect_rate)
    base = events - counts[Defect.DUPLICATE]  # events proper; duplicates fill the rest of the lines

    players = max(10, base // EVENTS_PER_PLAYER)
    activity = 1.0 / np.arange(1, players + 1) ** ZIPF_EXPONENT
    activity /= activity.sum()
    # Rank 1 is not player 1: the ids are a shuffled range, so the busiest players are scattered.
    player_ids = rng.permutation(players).astype(np.int64) + 1_000_000
    player_platform = rng.choice(len(PLATFORMS), size=players, p=PLATFORM_WEIGHTS)
    player_country = rng.integers(0, len(COUNTRIES), size=players)
    player_version = rng.choice(len(CLIENT_VERSIONS), size=players, p=CLIENT_VERSION_WEIGHTS)
    player_pays = rng.random(players) < PAYER_SHARE

    sessions = max(1, base // EVENTS_PER_SESSION)
    session_rank = rng.choice(players, size=sessions, p=activity)
    # Every session has its start and end; the remaining events go to sessions of uneven intensity.
    per_session = np.full(sessions, min(2, base // sessions), dtype=np.int64)
    intensity = rng.gamma(2.0, size=sessions)
    extra = base - int(per_session.sum())
    per_session += np.bincount(rng.choice(sessions, size=extra, p=intensity / intensity.sum()), minlength=sessions)
    duration = np.clip(
        rng.lognormal(np.log(SESSION_MEDIAN_S), SESSION_SIGMA, size=sessions), SESSION_MIN_S, SESSION_MAX_S
    ).astype(np.int64)
    hour = rng.choice(24, size=sessions, p=HOURLY_PROFILE / HOURLY_PROFILE.sum())
    # A session ends on the day it starts: the raw zone of a day holds that day's events only.
    start_s = np.minimum(hour * 3600 + rng.integers(0, 3600, size=sessions), 86_400 - 1 - duration)

    session = np.repeat(np.arange(sessions), per_session)
    position = np.arange(base) - np.repeat(np.cumsum(per_session) - per_session, per_session)
    last = np.repeat(per_session - 1, per_session)
    rank = session_rank[session]
    kind = np.asarray([EVENT_TYPES.index(t) for t in MIDDLE_TYPES])[
        rng.choice(len(MIDDLE_TYPES), size=base, p=MIDDLE_WEIGHTS)
    ]
    purchase, ad_view = EVENT_TYPES.index("purchase"), EVENT_TYPES.index("ad_view")
    kind = np.where((kind == purchase) & ~player_pays[rank], ad_view, kind)
    kind = np.where(position == 0, EVENT_TYPES.index("session_start"), kind)
    kind = np.where((position == last) & (position > 0), EVENT_TYPES.index("session_end"), kind)
    # Middle events at random offsets into the session; positions stay in time order after the sort.
    fraction = rng.random(base)
    fraction[position == 0] = 0.0
    fraction[(position == last) & (position > 0)] = 1.0
    fraction = fraction[np.lexsort((fraction, session))]
    midnight_ms = int(datetime.combine(day, datetime.min.time(), tzinfo=UTC).timestamp() * 1000)
    start_ms = midnight_ms + start_s * 1000 + rng.integers(0, 1000, size=sessions)
    ts_ms = start_ms[session] + (fraction * duration[session] * 1000).astype(np.int64)
    price = np.asarray(PRICES)[rng.choice(len(PRICES), size=base, p=PRICE_WEIGHTS)]

    # In-place defects on distinct events; duplicates copy good events only, so each line has one defect at most.
    shuffled = rng.permutation(base)
    defect = np.zeros(base, dtype=np.int8)
    taken = 0
    for code, kind_of_defect in enumerate(DEFECTS_IN_PLACE, start=1):
        defect[shuffled[taken : taken + counts[kind_of_defect]]] = code
        taken += counts[kind_of_defect]
    dup_source = shuffled[taken : taken + counts[Defect.DUPLICATE]]
    # Lines arrive in time order, with a little network jitter; a retried copy arrives up to five minutes later.
    arrival = np.concatenate(
        [
            ts_ms + rng.integers(0, 2_000, size=base),
            ts_ms[dup_source] + rng.integers(2_000, 300_000, size=dup_source.size),
        ]
    )
    return _Day(
        day=day,
        player_id=player_ids[rank],
        session_id=session,
        event_type=kind,
        platform=player_platform[rank],
        country=player_country[rank],
        client_version=player_version[rank],
        ts_ms=ts_ms,
        amount=np.where(kind == purchase, price, np.nan),
        duration_s=np.where(kind == EVENT_TYPES.index("session_end"), duration[session], -1),
        event_hex=rng.bytes(16 * base).hex(),
        session_hex=rng.bytes(8 * sessions).hex(),
        defect=defect,
        defect_u=rng.random((base, 2)),
        order=np.argsort(arrival, kind="stable"),
        dup_source=dup_source,
    )


def _format_chunk(plan: _Day, events: np.ndarray) -> list[str]:
    """The good JSON line of each event index in ``events``."""
    ts = np.datetime_as_string(plan.ts_ms[events].astype("datetime64[ms]"), unit="ms")
    tails = np.full(events.size, "", dtype=object)
    amounts = plan.amount[events]
    for i in np.flatnonzero(~np.isnan(amounts)):
        tails[i] = f',"amount":{amounts[i]}'
    durations = plan.duration_s[events]
    for i in np.flatnonzero(durations >= 0):
        tails[i] = f',"duration_s":{durations[i]}'
    event_hex, session_hex = plan.event_hex, plan.session_hex
    return [
        f'{{"event_id":"{event_hex[32 * e : 32 * e + 32]}","player_id":{p},'
        f'"session_id":"{session_hex[16 * s : 16 * s + 16]}","event_type":"{EVENT_TYPES[k]}",'
        f'"platform":"{PLATFORMS[pl]}","country":"{COUNTRIES[c]}","client_version":"{CLIENT_VERSIONS[v]}",'
        f'"ts":"{t}Z"{tail}}}'
        for e, p, s, k, pl, c, v, t, tail in zip(
            events.tolist(),
            plan.player_id[events].tolist(),
            plan.session_id[events].tolist(),
            plan.event_type[events].tolist(),
            plan.platform[events].tolist(),
            plan.country[events].tolist(),
            plan.client_version[events].tolist(),
            ts.tolist(),
            tails.tolist(),
            strict=True,
        )
    ]


def _iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _break_line(line: str, defect: Defect, u: np.ndarray, day: date) -> str:
    """``line`` with ``defect`` planted; ``u`` (two uniforms in [0, 1)) picks the variant, so the output is seeded."""
    if defect is Defect.MALFORMED:
        if u[0] < 0.85:
            # Any proper prefix of a JSON object is invalid JSON: the closing brace is gone at least.
            return line[: 1 + int(u[1] * (len(line) - 2))]
        return ("upload interrupted", "\x00\x00\x00\x00", "<html>502 Bad Gateway</html>")[int(u[1] * 3)]
    record: dict[str, Any] = json.loads(line)
    if defect is Defect.MISSING_REQUIRED:
        required = REQUIRED_FIELDS + REQUIRED_BY_TYPE.get(record["event_type"], ())
        field = required[int(u[0] * len(required))]
        if u[1] < 0.5:
            record[field] = None
        else:
            del record[field]
    elif defect is Defect.CLOCK_SKEW:
        midnight = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        if u[0] < 0.5:  # a device clock days ahead
            skewed = midnight + timedelta(days=1, hours=2) + timedelta(seconds=int(u[1] * 30 * 86_400))
        else:  # a client replaying yesterday's events, earlier than the grace allows
            skewed = midnight - timedelta(days=1) + timedelta(seconds=int(u[1] * 22 * 3600))
        record["ts"] = _iso_ms(skewed)
    elif defect is Defect.BAD_TYPE:
        typed = ["player_id", "ts"] + [f for f in ("amount", "duration_s") if f in record]
        field = typed[int(u[0] * len(typed))]
        record[field] = {
            "player_id": f"p-{record['player_id']}",
            "ts": int(datetime.fromisoformat(record["ts"]).timestamp()),
            "amount": f"{record.get('amount')} USD",
            "duration_s": f"{record.get('duration_s')}s",
        }[field]
    return json.dumps(record, separators=(",", ":"))


def generate_labelled_day(
    day: date, events: int, seed: int = 0, defect_rate: float = DEFAULT_DEFECT_RATE
) -> Iterator[tuple[str, Defect | None]]:
    """Like ``generate_day``, with each line's planted defect (``None`` for a good line) beside it.

    Raises ``ValueError`` if ``events`` is negative, ``defect_rate`` is outside [0, 0.5], or the day is too small to
    hold one line of each defect kind.
    """
    if events < 0 or not 0 <= defect_rate <= 0.5:
        raise ValueError(f"need events >= 0 and 0 <= defect_rate <= 0.5, got {events} and {defect_rate}")
    if events == 0:
        return
    plan = _plan_day(day, events, seed, defect_rate)
    base = plan.player_id.size
    for offset in range(0, plan.order.size, CHUNK):
        lines_ = plan.order[offset : offset + CHUNK]
        # Line indices past the events are duplicates: format them from the event they copy.
        source = lines_.copy()
        is_dup = lines_ >= base
        source[is_dup] = plan.dup_source[lines_[is_dup] - base]
        texts = _format_chunk(plan, source)
        for line_index, event, text in zip(lines_.tolist(), source.tolist(), texts, strict=True):
            if line_index >= base:
                yield text, Defect.DUPLICATE
            elif plan.defect[event]:
                defect = DEFECTS_IN_PLACE[plan.defect[event] - 1]
                yield _break_line(text, defect, plan.defect_u[event], day), defect
            else:
                yield text, None


def generate_day(day: date, events: int, seed: int = 0, defect_rate: float = DEFAULT_DEFECT_RATE) -> Iterator[str]:
    """``events`` raw JSON lines (no newline) of game telemetry for ``day``, in arrival order.

    ``events`` counts lines, duplicates included; ``defect_rate`` of them carry one planted defect each (see the
    module's docstring). Deterministic for given arguments. Raises ``ValueError`` as ``generate_labelled_day``.
    """
    for line, _ in generate_labelled_day(day, events, seed, defect_rate):
        yield line


@dataclass(frozen=True)
class DayUpload:
    """What ``write_day_to_s3`` put in S3."""

    uri: str
    keys: tuple[str, ...]
    lines: int
    bytes: int


def write_day_to_s3(
    client: S3Client,
    bucket: str,
    key_prefix: str,
    day: date,
    events: int,
    seed: int = 0,
    files: int = 4,
    defect_rate: float = DEFAULT_DEFECT_RATE,
) -> DayUpload:
    """Write ``generate_day(day, events, seed, defect_rate)`` to ``s3://bucket/<key_prefix>/dt=<day>/part-N.jsonl``.

    The lines are split into ``files`` consecutive runs of arrival order, one uncompressed JSON-lines file each
    (newline-terminated). Existing files of that day with the same names are replaced. Raises ``ValueError`` for
    ``files < 1`` or bad generator arguments, and botocore's ``ClientError``/``BotoCoreError`` if S3 refuses a file.
    """
    if files < 1:
        raise ValueError(f"files must be >= 1, got {files}")
    prefix = f"{key_prefix.strip('/')}/dt={day.isoformat()}"
    per_file, rest = divmod(events, files)
    lines = generate_day(day, events, seed, defect_rate)
    keys: list[str] = []
    size = 0
    for index in range(files):
        count = per_file + (1 if index < rest else 0)
        body = "".join(f"{next(lines)}\n" for _ in range(count)).encode()
        key = f"{prefix}/part-{index:05d}.jsonl"
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson")
        keys.append(key)
        size += len(body)
    return DayUpload(uri=f"s3://{bucket}/{prefix}/", keys=tuple(keys), lines=events, bytes=size)


def main(argv: list[str] | None = None) -> int:
    """``python -m spark_jobs.telemetry.generator``: write a day to S3 and print what was written; 1 on failure."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    parser = argparse.ArgumentParser(
        prog="python -m spark_jobs.telemetry.generator", description=__doc__.split("\n", 1)[0]
    )
    parser.add_argument("--date", type=date.fromisoformat, required=True, help="the day, YYYY-MM-DD")
    parser.add_argument("--events", type=int, default=1_000_000, help="lines to write (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    parser.add_argument("--defect-rate", type=float, default=DEFAULT_DEFECT_RATE, help="default: %(default)s")
    parser.add_argument("--files", type=int, default=4, help="default: %(default)s")
    parser.add_argument("--endpoint-url", help="S3 endpoint (default: AWS)")
    parser.add_argument("--region", default="us-east-1", help="default: %(default)s")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", default="raw/events", help="default: %(default)s")
    args = parser.parse_args(argv)
    # Credentials come from boto3's usual chain (environment, profile, instance role).
    client = boto3.client("s3", endpoint_url=args.endpoint_url, region_name=args.region)
    started = time.monotonic()
    try:
        upload = write_day_to_s3(
            client, args.bucket, args.prefix, args.date, args.events, args.seed, args.files, args.defect_rate
        )
    except ValueError as exc:
        parser.error(str(exc))
    except (BotoCoreError, ClientError) as exc:
        print(f"cannot write to s3://{args.bucket}/{args.prefix}: {exc}", file=sys.stderr)
        return 1
    print(
        f"wrote {upload.lines:,} lines ({upload.bytes / 2**20:,.1f} MiB) in {len(upload.keys)} files "
        f"to {upload.uri} in {time.monotonic() - started:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
