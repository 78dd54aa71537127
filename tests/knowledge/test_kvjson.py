"""KV_MODE=json flattening."""

from tests.knowledge.kvjson import flatten_json


def test_nested_objects_join_with_dots_and_arrays_become_multivalue():
    fields = flatten_json('{"a":{"b":{"c":"x"}},"list":["p","q"],"objs":[{"k":1},{"k":2},{"other":3}],'
                          '"deep":[[1,2],[3]]}')
    assert fields == {"a.b.c": ["x"], "list{}": ["p", "q"], "objs{}.k": ["1", "2"], "objs{}.other": ["3"],
                      "deep{}{}": ["1", "2", "3"]}


def test_scalars_keep_their_json_text():
    fields = flatten_json('{"f":1.50,"i":7,"t":true,"n":false,"z":null,"s":"a b"}')
    assert fields == {"f": ["1.50"], "i": ["7"], "t": ["true"], "n": ["false"], "z": ["null"], "s": ["a b"]}


def test_empty_containers_give_nothing_and_empty_strings_follow_the_choice():
    assert flatten_json('{"o":{},"l":[],"s":""}') == {"s": [""]}
    assert flatten_json('{"o":{},"l":[],"s":""}', keep_empty=False) == {}


def test_keys_with_odd_characters_are_kept_verbatim():
    fields = flatten_json('{"referencedResources":{"ACS::RAM::User":["alice","bob"]},"__tag__:__client_ip__":"1"}')
    assert fields == {"referencedResources.ACS::RAM::User{}": ["alice", "bob"], "__tag__:__client_ip__": ["1"]}


def test_truncated_or_non_object_json_extracts_nothing():
    assert flatten_json('{"a":"b","c":') == {}
    assert flatten_json('["a"]') == {}
    assert flatten_json('plain text') == {}


def test_only_the_first_cutoff_characters_are_extracted():
    raw = '{"first":"a","big":"' + "x" * 6000 + '","after":"b"}'
    assert list(flatten_json(raw)) == ["first"]                    # default cutoff 5000
    assert list(flatten_json(raw, cutoff=0)) == ["first", "big", "after"]
    assert list(flatten_json(raw, cutoff=len(raw))) == ["first", "big", "after"]


def test_a_value_touching_the_cutoff_is_not_extracted():
    raw = '{"a":"b","n":12345,"s":"text"}'
    assert flatten_json(raw, cutoff=len('{"a":"b","n":12345')) == {"a": ["b"]}
    assert flatten_json(raw, cutoff=len('{"a":"b","n":12345,"s":"te')) == {"a": ["b"], "n": ["12345"]}
    assert flatten_json(raw, cutoff=len('{"a":"b","n":12345,"s":"text"')) == {"a": ["b"], "n": ["12345"],
                                                                              "s": ["text"]}


def test_escapes_and_unicode_in_strings():
    assert flatten_json('{"k\\u00e9":"line\\nbreak \\"q\\""}') == {"k\u00e9": ['line\nbreak "q"']}


def test_a_number_cut_after_its_decimal_point_is_not_extracted():
    raw = '{"a":"b","n":100.5}'
    assert flatten_json(raw, cutoff=len('{"a":"b","n":100.')) == {"a": ["b"]}
    assert flatten_json(raw, cutoff=len('{"a":"b","n":100.5')) == {"a": ["b"]}


def test_nulls_can_be_dropped_but_the_string_null_stays():
    assert flatten_json('{"a":null,"b":"null","c":[null,1]}', keep_null=False) == {"b": ["null"], "c{}": ["1"]}
