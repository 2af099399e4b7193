"""date, birthdate and dateTime: ISO or day-first input; dates as ``YYYY-MM-DD``, date-times as ISO 8601 with an
offset, to the second."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any

from service.actions.coercion.common import MAX_YEAR, MIN_BIRTH_YEAR, MIN_YEAR, BadValue

_ISO_DATE_RE = re.compile(r"([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})")
_DMY_DATE_RE = re.compile(r"([0-9]{1,2})([-/.])([0-9]{1,2})\2([0-9]{4})")
_TIME_RE = r"(?:[T ]\s*([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]+))?)?)?"
_TZ_RE = r"\s*(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
_ISO_DT_RE = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})" + _TIME_RE + _TZ_RE, re.IGNORECASE)
_DMY_DT_RE = re.compile(r"([0-9]{1,2})([-/.])([0-9]{1,2})\2([0-9]{4})" + _TIME_RE + _TZ_RE, re.IGNORECASE)


def _make_date(y: str | int, m: str | int, d: str | int) -> date:
    try:
        result = date(int(y), int(m), int(d))
    except ValueError as exc:
        raise BadValue("no such date") from exc
    if not MIN_YEAR <= result.year <= MAX_YEAR:
        raise BadValue("the year must have four digits")
    return result


def to_date(value: Any) -> str:
    if isinstance(value, datetime):
        return _make_date(value.year, value.month, value.day).isoformat()
    if isinstance(value, date):
        return _make_date(value.year, value.month, value.day).isoformat()
    if not isinstance(value, str):
        raise BadValue(f"a {type(value).__name__} is not a date")
    text = value.strip()
    if len(text) > 64:
        raise BadValue("too long for a date")
    m = _ISO_DATE_RE.fullmatch(text)
    if m:
        y, _, mo, d = m.groups()
        return _make_date(y, mo, d).isoformat()
    m = _DMY_DATE_RE.fullmatch(text)
    if m:
        d, _, mo, y = m.groups()
        if int(mo) > 12 >= int(d):
            raise BadValue("no such date; dates are day first (DD-MM-YYYY)")
        return _make_date(y, mo, d).isoformat()
    m = _ISO_DT_RE.fullmatch(text)  # an ISO date-time: its date part, as written
    if m and m.group(4) is not None:
        _parse_datetime_match(m, iso=True, naive_tz=UTC)  # validates the time part
        return _make_date(*m.groups()[:3]).isoformat()
    raise BadValue("")


def to_birthdate(value: Any) -> str:
    result = to_date(value)
    born = date.fromisoformat(result)
    if born.year < MIN_BIRTH_YEAR:
        raise BadValue(f"a birth date before {MIN_BIRTH_YEAR}")
    if born > datetime.now(UTC).date() + timedelta(days=1):
        raise BadValue("a birth date in the future")
    return result


def _offset(text: str | None) -> tzinfo | None:
    if text is None:
        return None
    if text.upper() == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise BadValue("the time zone offset is invalid")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _parse_datetime_match(m: re.Match[str], *, iso: bool, naive_tz: tzinfo) -> datetime:
    if iso:
        y, mo, d, hh, mi, ss, _frac, tz = m.groups()
    else:
        d, _sep, mo, y, hh, mi, ss, _frac, tz = m.groups()
    day = _make_date(y, mo, d)
    try:
        result = datetime(day.year, day.month, day.day, int(hh or 0), int(mi or 0), int(ss or 0))
    except ValueError as exc:
        raise BadValue("no such time") from exc
    offset = _offset(tz)
    return result.replace(tzinfo=offset if offset is not None else naive_tz)


def _format_datetime(dt: datetime, naive_tz: tzinfo) -> str:
    if dt.tzinfo is None or dt.utcoffset() is None:
        dt = dt.replace(tzinfo=naive_tz)
    offset = dt.utcoffset()
    try:
        if offset is None or offset % timedelta(minutes=1):  # offsets with seconds (historic LMT): use UTC
            dt = dt.astimezone(UTC)
        # a fixed offset keeps the wall time; a named zone is frozen into its offset
        dt = dt.replace(tzinfo=timezone(dt.utcoffset() or timedelta(0)), microsecond=0)
    except OverflowError as exc:
        raise BadValue("out of range") from exc
    if not MIN_YEAR <= dt.year <= MAX_YEAR:
        raise BadValue("the year must have four digits")
    return dt.isoformat()


def to_datetime(value: Any, naive_tz: tzinfo) -> str:
    if isinstance(value, datetime):
        return _format_datetime(value, naive_tz)
    if isinstance(value, date):
        return _format_datetime(datetime(value.year, value.month, value.day), naive_tz)
    if not isinstance(value, str):
        raise BadValue(f"a {type(value).__name__} is not a date and time")
    text = value.strip()
    if len(text) > 64:
        raise BadValue("too long for a date and time")
    m = _ISO_DT_RE.fullmatch(text)
    if m:
        return _format_datetime(_parse_datetime_match(m, iso=True, naive_tz=naive_tz), naive_tz)
    m = _DMY_DT_RE.fullmatch(text)
    if m:
        return _format_datetime(_parse_datetime_match(m, iso=False, naive_tz=naive_tz), naive_tz)
    m = _ISO_DATE_RE.fullmatch(text)  # 2024/02/29 (date only, other separators)
    if m:
        y, _, mo, d = m.groups()
        day = _make_date(y, mo, d)
        return _format_datetime(datetime(day.year, day.month, day.day), naive_tz)
    raise BadValue("")
