"""The EVAL subset: syntax, Splunk's null rules, functions, and errors instead of silent nulls."""

import pytest

from tests.knowledge.evalexpr import FUNCTIONS, EvalError, parse_eval, to_field_values

FIELDS = {
    "num": ["42"], "text": ["Alice"], "empty": [""], "mv": ["a", "b", "c"], "one": ["only"],
    "ip": ["10.1.2.3"], "dotted.name": ["dotted"], "res{}": ["r1"], "uri": ["/p%20q?x=1"],
}


def value(expression: str):
    return parse_eval(expression).evaluate(FIELDS)


def field(expression: str):
    return to_field_values(value(expression), expression)


@pytest.mark.parametrize("expression, expected", [
    ('"lit"', ["lit"]),
    ("num + 1", ["43"]),
    ("num * 2 - 4 / 2", ["82"]),
    ("7 % 4", ["3"]),
    ("3 / 2", ["1.5"]),
    ("-num", ["-42"]),
    ('text . "-" . num', ["Alice-42"]),
    ('"a" + "b"', ["ab"]),
    ("'dotted.name'", ["dotted"]),
    ("'res{}'", ["r1"]),
    ('if(num > 40, "big", "small")', ["big"]),
    ('if(num = "42", "string-equal", "no")', ["string-equal"]),
    ('if(num = 42.0, "numeric-equal", "no")', ["numeric-equal"]),
    ('if(text = "alice", "eq", "case-sensitive")', ["case-sensitive"]),
    ('case(num < 10, "low", num < 100, "mid", true(), "high")', ["mid"]),
    ('coalesce(missing, empty, text)', [""]),
    ('coalesce(missing, text)', ["Alice"]),
    ("len(text)", ["5"]),
    ("len(empty)", ["0"]),
    ("lower(text) . upper(text)", ["aliceALICE"]),
    ('if(like(text, "Al%"), "y", "n")', ["y"]),
    ('if(like(text, "A_ice"), "y", "n")', ["y"]),
    ('if(text LIKE "al%", "y", "n")', ["n"]),
    ('if(match(text, "^A\\w+$"), "y", "n")', ["y"]),
    ('if(match(text, "^(?i)alice$"), "y", "n")', ["y"]),
    ('replace(text, "(A)(l)", "\\2\\1")', ["lAice"]),
    ('split("a;b;c", ";")', ["a", "b", "c"]),
    ("mvindex(mv, 1)", ["b"]),
    ("mvindex(mv, -1)", ["c"]),
    ("mvindex(mv, 0, 1)", ["a", "b"]),
    ("mvindex(one, 0)", ["only"]),
    ("mvcount(mv)", ["3"]),
    ('mvjoin(mv, ",")', ["a,b,c"]),
    ('mvappend(one, missing, "z")', ["only", "z"]),
    ('substr("abcdef", 2, 3)', ["bcd"]),
    ('substr("abcdef", -2)', ["ef"]),
    ('tonumber("0x1F", 16)', ["31"]),
    ('tonumber("12") + 1', ["13"]),
    ("tostring(num)", ["42"]),
    ('if(cidrmatch("10.0.0.0/8", ip), "internal", "external")', ["internal"]),
    ("urldecode(uri)", ["/p q?x=1"]),
    ('if(text IN ("Bob", "Alice"), "y", "n")', ["y"]),
    ('if(in(text, "Bob", "Carol"), "y", "n")', ["n"]),
    ('if(isnum(num) AND isstr(text), "y", "n")', ["y"]),
    ('if(true() XOR false(), "y", "n")', ["y"]),
    ('trim("  x  ")', ["x"]),
])
def test_expression_values(expression, expected):
    assert field(expression) == expected


@pytest.mark.parametrize("expression", [
    "missing",
    "missing + 1",
    'missing . "x"',
    "lower(missing)",
    "len(missing)",
    "mvindex(missing, 0)",
    "mvcount(missing)",
    "mvindex(mv, 5)",
    "null()",
    "coalesce(missing, null())",
    'case(missing = "x", "a")',
    'tonumber("abc")',
    "1 / 0",
    'replace(missing, "a", "b")',
    'split(missing, ",")',
])
def test_null_propagates(expression):
    assert field(expression) is None


def test_null_condition_counts_as_false():
    assert field('if(missing = "x", "yes", "no")') == ["no"]
    assert field('if(NOT missing = "x", "yes", "no")') == ["no"]
    assert field('case(missing = "x", "a", true(), "b")') == ["b"]


def test_three_valued_and_or():
    assert value('missing = "x" AND false()') is False
    assert value('missing = "x" OR true()') is True
    assert value('missing = "x" AND true()') is None
    assert value('missing = "x" OR false()') is None


def test_isnull_and_isnotnull_see_empty_strings_as_values():
    assert value("isnull(missing)") is True and value("isnotnull(missing)") is False
    assert value("isnull(empty)") is False and value("isnotnull(empty)") is True


def test_operator_precedence():
    assert field('if(1 = 1 OR 1 = 2 AND 1 = 2, "or-last", "and-last")') == ["or-last"]
    assert field("2 + 3 * 4") == ["14"]
    assert field('"a" . 1 . 2') == ["a12"]
    assert field('if(NOT 1 = 2 AND 2 = 2, "y", "n")') == ["y"]


@pytest.mark.parametrize("expression, message", [
    ("nosuch(text)", "not supported"),
    ("strftime(num, \"%Y\")", "not supported"),
    ("userIdentity.type", "single-quote"),
    ("if(num > 1, \"a\")", "arguments"),
    ('"unterminated', "unterminated"),
    ("num +", "unexpected"),
    ("(num", "expected ')'"),
    ("num $ 1", "unexpected character"),
])
def test_parse_errors(expression, message):
    with pytest.raises(EvalError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_eval(expression)


@pytest.mark.parametrize("expression, message", [
    ("lower(mv)", "multivalue"),
    ('mv = "a"', "multivalue"),
    ("num > 1", "boolean"),
    ('case(true(), "a", false())', "pairs"),
    ('if("text", 1, 2)', "boolean"),
    ('match(text, "(?<=a+)b")', "does not compile"),
    ('tostring(num, "commas")', "format"),
    ('replace(text, "A", "\\9")', "bad replacement"),
])
def test_evaluation_errors(expression, message):
    with pytest.raises(EvalError, match=message):
        field(expression)


def test_the_supported_function_list_is_the_documented_one():
    assert sorted(FUNCTIONS) == sorted([
        "if", "case", "coalesce", "isnull", "isnotnull", "isnum", "isstr", "null", "true", "false", "len", "lower",
        "upper", "trim", "ltrim", "rtrim", "urldecode", "like", "match", "replace", "substr", "split", "mvindex",
        "mvcount", "mvjoin", "mvappend", "in", "tonumber", "tostring", "cidrmatch"])
