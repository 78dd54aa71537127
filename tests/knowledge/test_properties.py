"""Property tests: the streaming JSON flattener against a plain reference, and parsers that fail only in their
own terms (EvalError, SearchError), never with a Python exception from inside."""

import json
from typing import Dict, List

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.knowledge.evalexpr import EvalError, parse_eval, to_field_values
from tests.knowledge.kvjson import flatten_json
from tests.knowledge.spl_search import SearchError, parse_search

keys = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
documents = st.dictionaries(keys, st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)), max_leaves=12), max_size=5)


def reference_flatten(value, path: str, out: Dict[str, List[str]]) -> None:
    """KV_MODE=json from json.loads, written independently of kvjson's streaming parser."""
    if isinstance(value, dict):
        for key, child in value.items():
            reference_flatten(child, f"{path}.{key}" if path else key, out)
    elif isinstance(value, list):
        for item in value:
            reference_flatten(item, path + "{}", out)
    else:
        text = {None: "null", True: "true", False: "false"}.get(value, None) if not isinstance(
            value, (int, float)) or isinstance(value, bool) else None
        out.setdefault(path, []).append(text if text is not None else (value if isinstance(value, str)
                                                                       else json.dumps(value)))


@given(documents)
@settings(max_examples=300, deadline=None)
def test_streaming_flattener_matches_the_reference(document):
    raw = json.dumps(document)
    expected: Dict[str, List[str]] = {}
    reference_flatten(document, "", expected)
    assert flatten_json(raw, cutoff=0) == expected


@given(documents, st.integers(min_value=1, max_value=400))
@settings(max_examples=300, deadline=None)
def test_a_cutoff_only_drops_trailing_values(document, cutoff):
    raw = json.dumps(document)
    full = flatten_json(raw, cutoff=0)
    cut = flatten_json(raw, cutoff=cutoff)
    for name, values in cut.items():
        assert full[name][:len(values)] == values
    if cutoff >= len(raw):
        assert cut == full


expression_text = st.text(alphabet='abcxyz_\'". ()=!<>+-*/%,0123456789 \\ANDORNOTIfcasematchlen{}:', max_size=40)
FIELDS = {"a": ["1"], "b": ["x"], "m": ["p", "q"], "x.y": ["z"]}


@given(expression_text)
@settings(max_examples=500, deadline=None)
def test_eval_fails_only_with_eval_error(text):
    try:
        node = parse_eval(text)
        to_field_values(node.evaluate(FIELDS), text)
    except EvalError:
        pass


search_text = st.text(alphabet='abc*_=!"() ,:INORANDNOT\\', max_size=40)


@given(search_text)
@settings(max_examples=500, deadline=None)
def test_search_fails_only_with_search_error(text):
    try:
        parse_search(text).matches({"a": ["1"], "b": ["x y"]}, lambda pattern, fields: False)
    except SearchError:
        pass
