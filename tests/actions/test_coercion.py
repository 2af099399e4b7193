"""Contact field values: resolving the field a maker means and coercing values per field type."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.actions.coercion import coerce_properties, coerce_value, describe_formats, resolve_field
from service.actions.problems import ActionError
from service.providers.base import ContactField, FieldOption

OPTIONS = (FieldOption("Nieuwsbrief", "1"), FieldOption("Acties", "2"), FieldOption("Events, live", "4"))
TYPES = ["string", "int", "money", "date", "dateTime", "birthdate", "email", "gender", "mobNr", "postcode", "set",
         "boolean"]


def field(ftype: str, name: str = "f") -> ContactField:
    return ContactField(name=name, display_name=name.title(), type=ftype,
                        options=OPTIONS if ftype == "set" else ())


def coerce(ftype, value, **kw):
    return coerce_value(field(ftype, "myField"), value, **kw)


def rejects(ftype, value, **kw) -> ActionError:
    with pytest.raises(ActionError) as info:
        coerce(ftype, value, **kw)
    problem = info.value.problem
    assert problem.status == 400
    assert problem.code == "INVALID_FIELD_VALUE"
    assert problem.ext["field"] == "myField"
    assert problem.ext["expected"] and problem.ext["value"]
    assert "'myField'" in problem.detail and problem.ext["expected"] in problem.detail
    return info.value


# --------------------------------------------------------------------------------------------- per type

ACCEPTED = {
    "string": [("hello", "hello"), ("  padded  ", "padded"), (42, "42"), (True, "true"), (1.5, "1.5"),
               (date(2024, 2, 29), "2024-02-29")],
    "int": [(42, 42), ("42", 42), (" 42 ", 42), ("-7", -7), ("+7", 7), (42.0, 42), (Decimal("3"), 3),
            (2**31 - 1, 2**31 - 1)],
    "money": [(12.5, "12.50"), ("12.50", "12.50"), ("12,50", "12.50"), ("1.234,56", "1234.56"),
              ("1,234.56", "1234.56"), ("1.234.567", "1234567.00"), ("€ 5", "5.00"), ("5 EUR", "5.00"),
              (10, "10.00"), ("-3,5", "-3.50"), ("0.125", "0.13"), ("1234.567", "1234.57"), (0.1 + 0.2, "0.30"),
              ("-0.001", "0.00"), (Decimal("7.005"), "7.01")],
    "date": [("2024-02-29", "2024-02-29"), ("29-02-2024", "2024-02-29"), ("29/02/2024", "2024-02-29"),
             ("29.02.2024", "2024-02-29"), ("1-2-2024", "2024-02-01"), ("2024/02/29", "2024-02-29"),
             ("2024-02-29T23:30:00-05:00", "2024-02-29"), (date(2024, 2, 29), "2024-02-29"),
             (datetime(2024, 2, 29, 13, 0), "2024-02-29")],
    "birthdate": [("1980-02-29", "1980-02-29"), ("29-02-1980", "1980-02-29")],
    "dateTime": [("2024-02-29T13:45", "2024-02-29T13:45:00+00:00"),
                 ("2024-02-29T13:45:12.1234567Z", "2024-02-29T13:45:12+00:00"),
                 ("2024-02-29T13:45:00+01:00", "2024-02-29T13:45:00+01:00"),
                 ("2024-02-29T13:45:00+0530", "2024-02-29T13:45:00+05:30"),
                 ("2024-02-29 13:45", "2024-02-29T13:45:00+00:00"),
                 ("29-02-2024 13:45", "2024-02-29T13:45:00+00:00"),
                 ("29/02/2024 13:45:30", "2024-02-29T13:45:30+00:00"),
                 ("2024-02-29", "2024-02-29T00:00:00+00:00"),
                 (datetime(2024, 2, 29, 13, 45, tzinfo=timezone(timedelta(hours=2))), "2024-02-29T13:45:00+02:00")],
    "email": [("jan@example.com", "jan@example.com"), (" Jan.Jansen@Example.COM ", "Jan.Jansen@example.com"),
              ("mailto:a+b@x.nl", "a+b@x.nl")],
    "gender": [("M", "M"), ("f", "F"), ("male", "M"), ("Female", "F"), ("man", "M"), ("vrouw", "F"),
               ("Mevrouw", "F"), ("U", None), ("unknown", None), ("onbekend", None)],
    "mobNr": [("+31 6 1234 5678", "+31612345678"), ("06-12345678", "0612345678"),
              ("+31 (0)6 12 34 56 78", "+31612345678"), ("(020) 123.4567", "0201234567"), (612345678, "612345678")],
    "postcode": [(" 1234 ab ", "1234 AB"), ("1234AB", "1234AB"), ("sw1a  1aa", "SW1A 1AA"), ("75008", "75008"),
                 (1011, "1011")],
    "boolean": [("true", True), ("False", False), ("yes", True), ("no", False), ("ja", True), ("Nee", False),
                ("1", True), ("0", False), (1, True), (False, False), ("on", True)],
    "set": [("Nieuwsbrief", ["1"]), ("Acties;Nieuwsbrief", ["1", "2"]), ("acties, nieuwsbrief", ["1", "2"]),
            (["2", "Nieuwsbrief"], ["1", "2"]), ([4, 1], ["1", "4"]), ("Events, live", ["4"]),
            ("Events, live;Acties", ["2", "4"]), ("2", ["2"])],
}

REJECTED = {
    "string": ["x" * 8001, "nul\x00byte", {"a": 1}, ["a"]],
    "int": ["abc", "4.2", "42.0", 4.2, True, "", "1e3", 2**31, "99999999999999999999999", float("nan"), "٣"],
    "money": ["abc", "1.234", "1,234", "12,", "1..2", "1.2.3,4,5", "12.3.4", float("inf"), "1e3", True,
              10**13, "1.23,45"],
    "date": ["31-02-2024", "2024-13-01", "02/29/2024", "29-02-24", "29-02/2024", "tomorrow", 20240229,
             "2024-02-29T25:00", "0999-01-01"],
    "birthdate": ["3000-01-01", "1700-01-01", "31-02-1980"],
    "dateTime": ["2024-02-30T10:00", "2024-02-29T24:00", "2024-02-29T13:60", "2024-02-29T13:45+25:00",
                 "13:45", "yesterday", 1709214300, "02/29/2024 13:45"],
    "email": ["jan", "jan@", "@example.com", "jan@example", "jan@@example.com", "jan @example.com",
              "jan@exa mple.com", "jan@-example.com", "jan@example.c", "jan..x@example.com", 5],
    "gender": ["alien", "mf", 1],
    "mobNr": ["abc", "12345", "+31 6 abc", "1" * 16, "++31612345678", -612345678, True],
    "postcode": ["1", "!!!", "12345678901", "12 34 56 78 9", "-1234", True],
    "boolean": ["maybe", 2, "tru"],
    "set": ["Unknown option", ["1", "99"], [["1"]], {"a": 1}],
}


@pytest.mark.parametrize(("ftype", "value", "expected"),
                         [(t, v, e) for t, cases in ACCEPTED.items() for v, e in cases])
def test_accepted_values(ftype, value, expected):
    assert coerce(ftype, value) == expected


@pytest.mark.parametrize(("ftype", "value"), [(t, v) for t, cases in REJECTED.items() for v in cases])
def test_rejected_values_name_field_value_and_expected_format(ftype, value):
    if value == "":
        assert coerce(ftype, value) is None  # blank means clear, not an error
        return
    rejects(ftype, value)


@pytest.mark.parametrize("ftype", TYPES)
@pytest.mark.parametrize("blank", [None, "", "   ", []])
def test_blank_means_clear(ftype, blank):
    assert coerce(ftype, blank) is None


def test_impossible_date_problem_mentions_the_value():
    exc = rejects("date", "31-02-2024")
    assert exc.problem.ext["value"] == "31-02-2024"
    assert "2024-02-29" in exc.problem.ext["expected"]


def test_month_first_dates_get_a_day_first_hint():
    assert "day first" in rejects("date", "02/29/2024").problem.detail


def test_ambiguous_money_explains_why():
    assert "thousands or decimals" in rejects("money", "1.234").problem.detail


def test_unknown_set_option_lists_the_valid_ones():
    detail = rejects("set", "Nieuwsbrief;Spam").problem.detail
    assert "'Spam'" in detail and "Nieuwsbrief (1)" in detail and "Acties (2)" in detail


def test_personal_values_are_masked_in_problems():
    exc = rejects("email", "jan.jansen@example")
    assert "jansen" not in exc.problem.detail and "jansen" not in str(exc.problem.ext)
    exc = rejects("mobNr", "+31 6 abc 9090")
    assert "9090" not in exc.problem.detail and "9090" not in str(exc.problem.ext)


def test_naive_datetimes_follow_the_given_zone():
    ams = ZoneInfo("Europe/Amsterdam")
    assert coerce("dateTime", "2024-07-01 13:45", naive_tz=ams) == "2024-07-01T13:45:00+02:00"
    assert coerce("dateTime", "29-02-2024 13:45", naive_tz=ams) == "2024-02-29T13:45:00+01:00"
    # an explicit offset is kept whatever the default zone
    assert coerce("dateTime", "2024-07-01T13:45Z", naive_tz=ams) == "2024-07-01T13:45:00+00:00"


def test_birthdate_today_is_accepted():
    today = datetime.now(UTC).date().isoformat()
    assert coerce("birthdate", today) == today


def test_unknown_type_is_treated_as_string():
    assert coerce_value(ContactField("x", "X", "rich_text"), " hi ") == "hi"


def test_set_without_options_is_rejected():
    with pytest.raises(ActionError) as info:
        coerce_value(ContactField("tags", "Tags", "set"), "a")
    assert "no options" in info.value.problem.detail


# --------------------------------------------------------------------------------------------- properties

_any_value = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.from_regex(r"\s*[+-]?[0-9]{1,4}([.,][0-9]{1,4}){0,3}\s*", fullmatch=True),
    st.from_regex(r"[0-9]{1,4}[-/. ][0-9]{1,2}[-/. ][0-9]{1,4}([ T][0-9]{1,2}:[0-9]{2}(:[0-9]{2})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?",
                  fullmatch=True),
    st.dates(), st.datetimes(), st.datetimes(timezones=st.timezones()),
    st.sampled_from(["Nieuwsbrief", "acties;2", "M", "vrouw", "ja", "+31 6 1234 5678", "a@B.nl", "1234 ab"]),
    st.lists(st.one_of(st.text(max_size=10), st.integers(), st.none(), st.sampled_from(["1", "Acties"])),
             max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@given(st.sampled_from(TYPES), _any_value)
def test_property_only_400s_and_idempotent(ftype, value):
    f = field(ftype)
    try:
        once = coerce_value(f, value)
    except ActionError as exc:
        assert exc.problem.status == 400
        assert exc.problem.ext["field"] == f.name
        return
    assert coerce_value(f, once) == once


@given(st.sampled_from(TYPES), _any_value)
def test_property_idempotent_with_a_local_zone(ftype, value):
    ams = ZoneInfo("Europe/Amsterdam")
    try:
        once = coerce_value(field(ftype), value, naive_tz=ams)
    except ActionError as exc:
        assert exc.problem.status == 400
        return
    assert coerce_value(field(ftype), once, naive_tz=ams) == once


# --------------------------------------------------------------------------------------------- resolving

FIELDS = [
    ContactField("lastorderdate", "Last Order Date", "date"),
    ContactField("email", "E-mail", "email"),
    ContactField("profileField1", "Segment", "string"),
    ContactField("profileField2", "Segment", "string"),
    ContactField("city", "Plaats", "string"),
    ContactField("permissions", "Permissions", "set", options=OPTIONS, read_only=False),
    ContactField("created", "Created", "dateTime", read_only=True),
]


@pytest.mark.parametrize(("given_name", "expected"), [
    ("lastorderdate", "lastorderdate"), ("LastOrderDate", "lastorderdate"), ("Last Order Date", "lastorderdate"),
    ("  last order   date ", "lastorderdate"), ("plaats", "city"), ("profileField2", "profileField2"),
])
def test_resolve_by_internal_or_display_name(given_name, expected):
    assert resolve_field(FIELDS, given_name).name == expected


def test_exact_internal_name_beats_a_case_insensitive_display_match():
    fields = [ContactField("city", "Town", "string"), ContactField("town", "City", "string")]
    assert resolve_field(fields, "city").name == "city"
    assert resolve_field(fields, "City").name == "city"  # internal name, case-insensitive, before display name


def test_ambiguous_display_name_lists_candidates():
    with pytest.raises(ActionError) as info:
        resolve_field(FIELDS, "segment")
    problem = info.value.problem
    assert problem.status == 400 and problem.code == "AMBIGUOUS_FIELD"
    assert problem.ext["field"] == "segment"
    assert problem.ext["candidates"] == [{"name": "profileField1", "displayName": "Segment"},
                                         {"name": "profileField2", "displayName": "Segment"}]
    assert "internal name" in problem.detail


def test_unknown_field_suggests_close_names():
    with pytest.raises(ActionError) as info:
        resolve_field(FIELDS, "lastorderdat")
    problem = info.value.problem
    assert problem.status == 400 and problem.code == "UNKNOWN_FIELD"
    assert problem.ext["field"] == "lastorderdat"
    assert "lastorderdate" in problem.ext["suggestions"]
    assert "lastorderdate" in problem.detail

    with pytest.raises(ActionError) as info:
        resolve_field(FIELDS, "zzzzzz")
    assert info.value.problem.ext["suggestions"] == []


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_blank_field_name_is_rejected(bad):
    with pytest.raises(ActionError) as info:
        resolve_field(FIELDS, bad)
    assert info.value.problem.status == 400


@given(st.text(max_size=30))
def test_property_resolve_only_raises_400(name):
    try:
        f = resolve_field(FIELDS, name)
    except ActionError as exc:
        assert exc.problem.status == 400
    else:
        assert f in FIELDS


def test_coerce_properties_resolves_and_coerces():
    out = coerce_properties(FIELDS, {"Last Order Date": "29-02-2024", "E-MAIL": "A@B.NL", "plaats": ""})
    assert out == {"lastorderdate": "2024-02-29", "email": "A@b.nl", "city": None}


def test_coerce_properties_refuses_read_only_and_duplicates():
    with pytest.raises(ActionError) as info:
        coerce_properties(FIELDS, {"created": "2024-01-01"})
    assert info.value.problem.code == "READ_ONLY_FIELD" and info.value.problem.ext["field"] == "created"
    with pytest.raises(ActionError) as info:
        coerce_properties(FIELDS, {"email": "a@b.nl", "E-mail": "c@d.nl"})
    assert info.value.problem.code == "DUPLICATE_FIELD"


def test_describe_formats_mentions_every_type_family():
    text = describe_formats()
    for word in ("int", "money", "date", "dateTime", "email", "gender", "mobNr", "postcode", "boolean", "set"):
        assert word in text
    assert text.endswith(".")
    assert "Europe/Amsterdam" in describe_formats("Europe/Amsterdam")
