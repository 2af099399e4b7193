"""Automation fields: the incumbent's fieldsText syntax, typed inputs, type checks and the dynamic schema."""

from __future__ import annotations

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.actions.automation_fields import (
    build_field_values,
    dynamic_schema,
    fields_text_template,
    parse_fields_text,
    render_fields_text,
)
from service.actions.problems import ActionError
from service.providers.base import AutomationField, FieldValue

# The four valid examples from the incumbent's manual (seeds/000): all mean the same two fields.
SEED_EXAMPLES = [
    "invoiceEmail=invoice@company.com;invoiceCode=;invoiceVatNumber=NL123456",
    "invoiceEmail=invoice@company.com;invoiceVatNumber=NL123456",
    "invoiceEmail=invoice@company.com\ninvoiceCode=\ninvoiceVatNumber=NL123456",
    "invoiceEmail=invoice@company.com\ninvoiceVatNumber=NL123456",
]
EXPECTED_SEED = [("invoiceEmail", "invoice@company.com"), ("invoiceVatNumber", "NL123456")]

DEFS = [
    AutomationField("invoiceEmail", "STRING"),
    AutomationField("invoiceCode", "STRING"),
    AutomationField("invoiceVatNumber", "STRING"),
    AutomationField("orderLink", "URL"),
    AutomationField("crosssell", "PRODUCTLIST"),
]


def _error(fn, *args) -> ActionError:
    with pytest.raises(ActionError) as info:
        fn(*args)
    assert info.value.problem.status == 400
    return info.value


# --------------------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("text", SEED_EXAMPLES)
def test_seed_examples_parse_to_the_same_fields(text):
    assert parse_fields_text(text) == EXPECTED_SEED


@pytest.mark.parametrize("text", [t.replace("\n", "\r\n") for t in SEED_EXAMPLES[2:]] + [
    "  invoiceEmail = invoice@company.com ;\n\n invoiceVatNumber=NL123456 ;",
    ";;invoiceEmail=invoice@company.com;;\r\n;invoiceVatNumber=NL123456\r",
])
def test_line_endings_whitespace_and_empty_segments(text):
    assert parse_fields_text(text) == EXPECTED_SEED


def test_productlist_syntax_from_the_seed():
    assert parse_fields_text("crosssell={123,567,891}") == [("crosssell", ["123", "567", "891"])]
    assert parse_fields_text("crosssell={ 123 , 567 }") == [("crosssell", ["123", "567"])]


def test_empty_list_items_are_dropped_and_an_empty_list_is_blank():
    assert parse_fields_text("crosssell={a,,b,}") == [("crosssell", ["a", "b"])]
    assert parse_fields_text("crosssell={};x={ , }") == []


def test_value_may_contain_equals_signs_and_inner_braces():
    assert parse_fields_text("orderLink=https://shop.test/o?id=5&x=y") == [("orderLink", "https://shop.test/o?id=5&x=y")]
    assert parse_fields_text("greeting=Hi {name} there") == [("greeting", "Hi {name} there")]


def test_none_and_blank_text_give_no_fields():
    assert parse_fields_text(None) == []
    assert parse_fields_text("  \n ; ") == []


@pytest.mark.parametrize(("text", "field", "hint"), [
    ("invoiceEmail=<STRING>", "invoiceEmail", "<STRING>"),
    ("invoiceEmail=a@b.nl;orderLink=<URL>", "orderLink", "<URL>"),
    ("crosssell={<PRODUCTLIST>}", "crosssell", "<PRODUCTLIST>"),
    ("crosssell={<STRING>,<STRING>,etc}", "crosssell", "<STRING>"),
    ("x=< string >", "x", "<STRING>"),
])
def test_unreplaced_type_hints_are_rejected_with_a_pointed_message(text, field, hint):
    exc = _error(parse_fields_text, text)
    assert exc.problem.code == "TYPE_HINT_NOT_REPLACED"
    assert exc.problem.ext["field"] == field
    assert f"'{field}'" in exc.problem.detail and hint in exc.problem.detail
    assert "replace it" in exc.problem.detail


def test_the_template_is_the_incumbent_pre_fill_and_is_rejected_unchanged():
    template = fields_text_template(DEFS)
    assert "invoiceEmail=<STRING>" in template.splitlines()
    assert "crosssell={<PRODUCTLIST>}" in template.splitlines()
    exc = _error(parse_fields_text, template)
    assert exc.problem.code == "TYPE_HINT_NOT_REPLACED"


@pytest.mark.parametrize(("text", "field", "code"), [
    ("invoiceEmail", "fieldsText", "FIELDS_TEXT_INVALID"),
    ("a=1;just some words;b=2", "fieldsText", "FIELDS_TEXT_INVALID"),
    ("=orphan", "fieldsText", "FIELDS_TEXT_INVALID"),
    ("crosssell={1,2", "crosssell", "FIELDS_TEXT_INVALID"),
    ("crosssell=1,2}", "crosssell", "FIELDS_TEXT_INVALID"),
    ("crosssell={1,{2}}", "crosssell", "FIELDS_TEXT_INVALID"),
    ("crosssell={1;2}", "crosssell", "FIELDS_TEXT_INVALID"),  # ';' always separates fields
    ("a=1;b=2;a=3", "a", "DUPLICATE_FIELD"),
])
def test_syntax_errors_name_the_field_or_segment(text, field, code):
    exc = _error(parse_fields_text, text)
    assert exc.problem.code == code
    assert exc.problem.ext["field"] == field
    if field == "fieldsText":
        assert exc.problem.ext["segment"] in text


def test_a_blank_duplicate_is_not_a_conflict():
    assert parse_fields_text("a=1;a=") == [("a", "1")]


# --------------------------------------------------------------------------------------------- rendering


def test_render_then_parse_gives_the_fields_back():
    fields = {"invoiceEmail": "invoice@company.com", "crosssell": ["1", "2"], "link": "https://x.test/?a=b"}
    for sep in (";", "\n"):
        assert parse_fields_text(render_fields_text(fields, sep)) == list(fields.items())


@pytest.mark.parametrize("fields", [
    {"a": "x;y"}, {"a": "line\nbreak"}, {"a=b": "1"}, {"a": ""}, {"a": " padded "}, {"a": []},
    {"a": ["x,y"]}, {"a": "{braced}"}, {"a": "<STRING>"}, {"": "v"},
])
def test_render_refuses_what_the_syntax_cannot_carry(fields):
    with pytest.raises(ValueError):
        render_fields_text(fields)


_SAFE_CHARS = st.characters(blacklist_characters=";\r\n=,{}", blacklist_categories=("Cs",))
_atom = st.text(_SAFE_CHARS, min_size=1, max_size=12).map(str.strip).filter(
    lambda s: bool(s) and not s.startswith("<"))
_item = _atom
_scalar = st.text(st.characters(blacklist_characters=";\r\n", blacklist_categories=("Cs",)), min_size=1,
                  max_size=20).map(str.strip).filter(
    lambda s: bool(s) and not s.startswith("{") and not s.endswith("}") and not s.startswith("<"))
_fields = st.dictionaries(_atom, st.one_of(_scalar, st.lists(_item, min_size=1, max_size=4)), max_size=6)


@given(_fields, st.sampled_from([";", "\n", "\r\n"]))
def test_property_round_trip(fields, sep):
    assert parse_fields_text(render_fields_text(fields, sep)) == list(fields.items())


@given(st.text(max_size=200))
def test_property_arbitrary_text_only_raises_a_400(text):
    try:
        result = parse_fields_text(text)
    except ActionError as exc:
        assert exc.problem.status == 400
        assert exc.problem.ext.get("field")
    else:
        assert all(isinstance(name, str) and name for name, _ in result)


_grammar_text = st.lists(
    st.one_of(
        st.sampled_from(["invoiceEmail", "orderLink", "crosssell", "other", " ", "", "<STRING>", "{", "}"]),
        st.text(st.sampled_from("ab=;,{}<> \n"), max_size=8),
    ),
    max_size=10,
).map("".join)


@given(_grammar_text, st.one_of(st.none(), st.dictionaries(
    st.sampled_from(["invoiceEmail", "orderLink", "crosssell", "Crosssell", "nope", ""]),
    st.one_of(st.none(), st.text(max_size=10), st.integers(), st.floats(), st.booleans(),
              st.lists(st.one_of(st.text(max_size=5), st.integers(), st.none()), max_size=3)),
    max_size=4)))
def test_property_build_only_raises_a_400(text, typed):
    try:
        values = build_field_values(DEFS, typed, text)
    except ActionError as exc:
        assert exc.problem.status == 400
        assert exc.problem.ext.get("field")
    else:
        names = [v.name for v in values]
        assert names == [d.name for d in DEFS if d.name in names]  # definition order, no duplicates


# --------------------------------------------------------------------------------------------- combining


def test_build_from_text_in_definition_order():
    values = build_field_values(DEFS, None, "crosssell={1,2}\ninvoiceEmail=a@b.nl;orderLink=https://s.test/o/1")
    assert values == [
        FieldValue("invoiceEmail", "STRING", value="a@b.nl"),
        FieldValue("orderLink", "URL", value="https://s.test/o/1"),
        FieldValue("crosssell", "PRODUCTLIST", values=("1", "2")),
    ]


def test_typed_wins_over_text_on_conflict():
    values = build_field_values(DEFS, {"invoiceEmail": "typed@b.nl"}, "invoiceEmail=text@b.nl;invoiceCode=C1")
    by_name = {v.name: v for v in values}
    assert by_name["invoiceEmail"].value == "typed@b.nl"
    assert by_name["invoiceCode"].value == "C1"


def test_blank_typed_value_lets_the_text_value_apply():
    values = build_field_values(DEFS, {"invoiceEmail": "", "crosssell": []}, "invoiceEmail=t@b.nl;crosssell={9}")
    assert values == [FieldValue("invoiceEmail", "STRING", value="t@b.nl"),
                      FieldValue("crosssell", "PRODUCTLIST", values=("9",))]


def test_typed_scalars_become_text():
    values = build_field_values(DEFS, {"invoiceEmail": 42, "invoiceCode": True, "invoiceVatNumber": 1.5}, None)
    assert [v.value for v in values] == ["42", "true", "1.5"]


def test_productlist_accepts_a_single_string_and_splits_commas():
    assert build_field_values(DEFS, {"crosssell": "123"}, None) == [
        FieldValue("crosssell", "PRODUCTLIST", values=("123",))]
    assert build_field_values(DEFS, None, "crosssell=123, 567") == [
        FieldValue("crosssell", "PRODUCTLIST", values=("123", "567"))]
    # a typed array can carry a comma inside an item
    assert build_field_values(DEFS, {"crosssell": ["a,b", 7]}, None) == [
        FieldValue("crosssell", "PRODUCTLIST", values=("a,b", "7"))]


def test_typed_values_may_carry_semicolons():
    values = build_field_values(DEFS, {"invoiceCode": "A;B=C"}, None)
    assert values == [FieldValue("invoiceCode", "STRING", value="A;B=C")]


def test_case_insensitive_name_maps_to_the_defined_name():
    assert build_field_values(DEFS, None, "INVOICEEMAIL=a@b.nl") == [
        FieldValue("invoiceEmail", "STRING", value="a@b.nl")]


def test_unknown_field_is_named_and_known_fields_listed():
    exc = _error(build_field_values, DEFS, None, "invoiceMail=a@b.nl")
    assert exc.problem.code == "UNKNOWN_AUTOMATION_FIELD"
    assert exc.problem.ext["field"] == "invoiceMail"
    assert exc.problem.ext["known"] == [d.name for d in DEFS]
    assert "invoiceEmail" in exc.problem.detail

    exc = _error(build_field_values, [], {"x": "1"}, None)
    assert exc.problem.ext["field"] == "x" and "takes no fields" in exc.problem.detail


@pytest.mark.parametrize(("typed", "text", "field"), [
    ({"invoiceEmail": ["a", "b"]}, None, "invoiceEmail"),
    (None, "invoiceEmail={a,b}", "invoiceEmail"),
    ({"orderLink": "not a url"}, None, "orderLink"),
    (None, "orderLink=ftp://files.test/x", "orderLink"),
    (None, "orderLink=/relative/path", "orderLink"),
    (None, "orderLink=https://", "orderLink"),
    ({"orderLink": "http://host:99999/"}, None, "orderLink"),
    ({"invoiceEmail": {"value": "x"}}, None, "invoiceEmail"),
    ({"crosssell": [["nested"]]}, None, "crosssell"),
    ({"invoiceEmail": "<STRING>"}, None, "invoiceEmail"),
    ({"invoiceEmail": "a", "INVOICEEMAIL": "b"}, None, "invoiceEmail"),
    (None, "invoiceEmail=a;INVOICEEMAIL=b", "invoiceEmail"),
])
def test_type_errors_name_the_field(typed, text, field):
    exc = _error(build_field_values, DEFS, typed, text)
    assert exc.problem.ext["field"] == field
    assert f"'{field}'" in exc.problem.detail


def test_valid_urls_are_accepted():
    for url in ("https://example.com", "http://localhost:8080/x?y=1#z", "https://[::1]/", "HTTPS://Shop.Test/p"):
        assert build_field_values(DEFS, {"orderLink": url}, None)[0].value == url


# --------------------------------------------------------------------------------------------- schema


def test_dynamic_schema_shape():
    schema = dynamic_schema(DEFS)
    jsonschema.Draft4Validator.check_schema(schema)
    assert schema["type"] == "object"
    props = schema["properties"]
    assert list(props) == [d.name for d in DEFS]
    assert props["invoiceEmail"]["type"] == "string" and "format" not in props["invoiceEmail"]
    assert props["orderLink"] == {**props["orderLink"], "type": "string", "format": "uri"}
    assert props["crosssell"]["type"] == "array" and props["crosssell"]["items"]["type"] == "string"
    for name, prop in props.items():
        assert prop["x-ms-summary"] == name
        assert prop["description"].endswith(".")
    assert "required" not in schema


def test_dynamic_schema_accepts_what_build_accepts():
    schema = dynamic_schema(DEFS)
    body = {"invoiceEmail": "a@b.nl", "orderLink": "https://s.test/", "crosssell": ["1", "2"]}
    jsonschema.validate(body, schema)
    assert len(build_field_values(DEFS, body, None)) == 3


def test_dynamic_schema_without_fields_is_an_empty_object():
    assert dynamic_schema([]) == {"type": "object", "properties": {}}
