"""The search-time pipeline on small apps written here: KV_MODE, FIELDALIAS, EVAL, LOOKUP, eventtypes, tags."""

import json

import pytest

from tests.knowledge.knowledge import App, KnowledgeError

ST = "test:st"


def run(app_dir, body, sourcetype=ST, **kwargs):
    return App(app_dir).search(json.dumps(body), sourcetype, **kwargs)


def props(*lines, kv_mode="json"):
    return "\n".join([f"[{ST}]", f"KV_MODE = {kv_mode}", "TRUNCATE = 100000", *lines]) + "\n"


# ------------------------------------------------------------------------------------------------- extraction

def test_kv_mode_json_extracts_and_metadata_fields_are_set(make_app):
    result = run(make_app(props=props()), {"a": {"b": "1"}, "l": ["x", "y"]}, source="src1", host="h1")
    assert result.fields["a.b"] == ["1"] and result.fields["l{}"] == ["x", "y"]
    assert result.fields["sourcetype"] == [ST] and result.fields["source"] == ["src1"]
    assert result.fields["host"] == ["h1"]


def test_json_extraction_stops_at_the_cutoff_which_limits_conf_can_raise(make_app):
    body = {"early": "1", "filler": "x" * 6000, "late": "2"}
    fields = run(make_app(props=props()), body).fields
    assert "early" in fields and "late" not in fields
    app = make_app(props=props(), limits="[spath]\nextraction_cutoff = 10000\n")
    assert run(app, body).fields["late"] == ["2"]
    assert App(make_app(props=props()), json_cutoff=0).search(json.dumps(body), ST).fields["late"] == ["2"]


def test_kv_mode_none_extracts_nothing(make_app):
    result = run(make_app(props=props(kv_mode="none")), {"a": "1"})
    assert "a" not in result.fields


def test_indexed_extractions_with_kv_mode_json_doubles_every_value(make_app):
    app = make_app(props=props("INDEXED_EXTRACTIONS = json"))
    assert run(app, {"a": "1"}).fields["a"] == ["1", "1"]


def test_indexed_extractions_with_kv_mode_none_extracts_once(make_app):
    app = make_app(props=props("INDEXED_EXTRACTIONS = json", kv_mode="none"))
    assert run(app, {"a": "1"}).fields["a"] == ["1"]


@pytest.mark.parametrize("conf, message", [
    (props(kv_mode="auto"), "KV_MODE=auto"),
    (props("REPORT-x = some_transform"), "regex extractions"),
    (props("EXTRACT-x = (?<f>\\d+)"), "regex extractions"),
    (props("EVAL-x = strftime(_time, \"%Y\")"), "not supported"),
    (props("EVAL-x = \"a\"", "eval-x = \"b\""), "several EVAL- keys"),
    (props("EVAL-x = _time + 1"), "reads _time"),
    (props("FIELDALIAS-x = __topic__ AS topic"), "reads __topic__"),
    (props("LOOKUP-x = nosuch f OUTPUT g"), "no stanza"),
    (props("FIELDALIAS-x = a TO b"), "AS or ASNEW"),
])
def test_unsimulated_or_broken_props_are_errors(make_app, conf, message):
    with pytest.raises(KnowledgeError, match=message):
        run(make_app(props=conf), {"a": "1"})


def test_a_json_key_named_like_a_metadata_field_is_not_extracted_and_reading_it_is_an_error(make_app):
    fields = run(make_app(props=props()), {"host": "json-host"}, host="splunk-host").fields
    assert fields["host"] == ["splunk-host"]
    with pytest.raises(KnowledgeError, match="collides with Splunk's host"):
        run(make_app(props=props("EVAL-dest = host")), {"host": "json-host"})
    assert run(make_app(props=props("EVAL-dest = host")), {"other": "1"}, host="h").fields["dest"] == ["h"]


def test_missing_sourcetype_stanza_is_an_error(make_app):
    with pytest.raises(KnowledgeError, match="no \\[other\\] stanza"):
        run(make_app(props=props()), {"a": "1"}, sourcetype="other")


# ------------------------------------------------------------------------------------------------- FIELDALIAS

def test_alias_as_copies_and_overwrites(make_app):
    app = make_app(props=props("FIELDALIAS-a = src_ip AS src"))
    assert run(app, {"src_ip": "1.1.1.1", "src": "old"}).fields["src"] == ["1.1.1.1"]


def test_alias_asnew_keeps_an_existing_field(make_app):
    app = make_app(props=props("FIELDALIAS-a = src_ip ASNEW src"))
    assert run(app, {"src_ip": "1.1.1.1", "src": "old"}).fields["src"] == ["old"]
    assert run(app, {"src_ip": "1.1.1.1"}).fields["src"] == ["1.1.1.1"]


def test_alias_as_removes_the_alias_when_the_source_is_missing(make_app):
    app = make_app(props=props("FIELDALIAS-a = src_ip AS src"))
    assert "src" not in run(app, {"src": "stale"}).fields
    app = make_app(props=props("FIELDALIAS-a = src_ip ASNEW src"))
    assert run(app, {"src": "stale"}).fields["src"] == ["stale"]


def test_aliases_read_the_fields_before_aliasing_so_they_do_not_chain(make_app):
    app = make_app(props=props("FIELDALIAS-a = x AS y", "FIELDALIAS-b = y AS z", "FIELDALIAS-c = x AS w w AS v"))
    fields = run(app, {"x": "1"}).fields
    assert fields["y"] == ["1"] and fields["w"] == ["1"]
    assert "z" not in fields and "v" not in fields


def test_one_class_can_hold_several_aliases_and_dotted_names(make_app):
    app = make_app(props=props("FIELDALIAS-a = u.name AS user u.id AS user_id"))
    fields = run(app, {"u": {"name": "alice", "id": "7"}}).fields
    assert fields["user"] == ["alice"] and fields["user_id"] == ["7"]


# ------------------------------------------------------------------------------------------------- EVAL

def test_evals_cannot_see_one_another(make_app):
    app = make_app(props=props('EVAL-a = "from-eval"', 'EVAL-b = a . "+b"', 'EVAL-c = coalesce(a, "no a")'))
    fields = run(app, {"x": "1"}).fields
    assert fields["a"] == ["from-eval"]
    assert "b" not in fields             # a was null before the EVALs ran, so a . "+b" is null
    assert fields["c"] == ["no a"]
    fields = run(app, {"a": "json"}).fields
    assert fields["a"] == ["from-eval"] and fields["b"] == ["json+b"]


def test_eval_sees_aliases_and_overrides_extracted_fields(make_app):
    app = make_app(props=props("FIELDALIAS-a = name AS user", 'EVAL-user = upper(user)', 'EVAL-name = "calc"'))
    fields = run(app, {"name": "alice"}).fields
    assert fields["user"] == ["ALICE"] and fields["name"] == ["calc"]


def test_eval_null_removes_an_extracted_field(make_app):
    app = make_app(props=props("EVAL-reason = if(status=\"failure\", reason, null())"))
    assert "reason" not in run(app, {"status": "success", "reason": "x"}).fields
    assert run(app, {"status": "failure", "reason": "x"}).fields["reason"] == ["x"]


def test_eval_error_while_running_names_the_key(make_app):
    app = make_app(props=props("EVAL-x = lower('l{}')"))
    with pytest.raises(KnowledgeError, match="EVAL-x: lower\\(\\) got a multivalue"):
        run(app, {"l": ["a", "b"]})


def test_continued_eval_lines_work(make_app):
    app = make_app(props=props('EVAL-x = case(a="1", "one",\\', '    true(), "other")'))
    assert run(app, {"a": "1"}).fields["x"] == ["one"]


# ------------------------------------------------------------------------------------------------- LOOKUP

ACTIONS_CSV = """\
eventName,status,action,object_category
CreateUser,*,created,user
ConsoleSignin,success,success,
ConsoleSignin,failure,failure,
Delete*,*,deleted,
"""
TRANSFORMS = """\
[actions]
filename = actions.csv
match_type = WILDCARD(status), WILDCARD(eventName)
max_matches = 1

[verbs]
filename = verbs.csv

[nets]
filename = nets.csv
match_type = CIDR(cidr)

[colors]
filename = colors.csv
case_sensitive_match = false
max_matches = 5
min_matches = 1
default_match = unknown
"""
LOOKUPS = {
    "actions.csv": ACTIONS_CSV,
    "verbs.csv": "verb,action\nCreate,created\nStop,stopped\n",
    "nets.csv": "cidr,zone\n10.0.0.0/8,internal\n0.0.0.0/0,external\n",
    "colors.csv": "name,color\nsky,blue\nsky,grey\ngrass,green\n",
}


def lookup_app(make_app, *lines):
    return make_app(props=props(*lines), transforms=TRANSFORMS, lookups=LOOKUPS)


def test_wildcard_lookup_matches_rows_in_file_order(make_app):
    app = lookup_app(make_app, "LOOKUP-a = actions eventName status OUTPUT action object_category")
    fields = run(app, {"eventName": "CreateUser", "status": "failure"}).fields
    assert fields["action"] == ["created"] and fields["object_category"] == ["user"]
    fields = run(app, {"eventName": "ConsoleSignin", "status": "failure"}).fields
    assert fields["action"] == ["failure"] and "object_category" not in fields   # empty cells output nothing
    assert run(app, {"eventName": "DeleteTrail", "status": "success"}).fields["action"] == ["deleted"]


def test_exact_lookup_is_case_sensitive_by_default(make_app):
    app = lookup_app(make_app, "LOOKUP-a = verbs verb OUTPUT action")
    assert run(app, {"verb": "Create"}).fields["action"] == ["created"]
    assert "action" not in run(app, {"verb": "create"}).fields


def test_output_overwrites_and_clears_on_no_match(make_app):
    app = lookup_app(make_app, "LOOKUP-a = verbs verb OUTPUT action")
    assert run(app, {"verb": "Stop", "action": "old"}).fields["action"] == ["stopped"]
    assert "action" not in run(app, {"verb": "Nope", "action": "old"}).fields


def test_outputnew_does_not_overwrite(make_app):
    app = lookup_app(make_app, "LOOKUP-a = verbs verb OUTPUTNEW action")
    assert run(app, {"verb": "Stop", "action": "old"}).fields["action"] == ["old"]
    assert run(app, {"verb": "Stop"}).fields["action"] == ["stopped"]
    assert run(app, {"verb": "Nope", "action": "old"}).fields["action"] == ["old"]


def test_lookups_run_in_class_order_and_outputnew_sees_earlier_outputs(make_app):
    app = lookup_app(make_app, "LOOKUP-02_verb = verbs verb OUTPUTNEW action",
                     "LOOKUP-01_exact = actions eventName status OUTPUTNEW action")
    assert run(app, {"eventName": "CreateUser", "status": "success", "verb": "Stop"}).fields["action"] == ["created"]
    assert run(app, {"eventName": "Unknown", "status": "success", "verb": "Stop"}).fields["action"] == ["stopped"]


def test_lookup_reads_eval_output_but_eval_cannot_read_lookup_output(make_app):
    app = lookup_app(make_app, 'EVAL-verb = replace(eventName, "^([A-Z][a-z]+).*$", "\\1")',
                     "LOOKUP-a = verbs verb OUTPUT action", 'EVAL-seen = coalesce(action, "none")')
    fields = run(app, {"eventName": "StopLogging"}).fields
    assert fields["verb"] == ["Stop"] and fields["action"] == ["stopped"] and fields["seen"] == ["none"]


def test_nested_automatic_lookups_are_an_error(make_app):
    app = lookup_app(make_app, "LOOKUP-1 = verbs verb OUTPUT action AS zone_input",
                     "LOOKUP-2 = nets cidr AS zone_input OUTPUT zone")
    with pytest.raises(KnowledgeError, match="nested automatic lookups"):
        run(app, {"verb": "Stop"})


def test_as_renames_inputs_and_outputs_and_no_output_clause_outputs_every_other_column(make_app):
    app = lookup_app(make_app, "LOOKUP-a = verbs verb AS api_verb OUTPUT action AS vendor_action")
    assert run(app, {"api_verb": "Stop"}).fields["vendor_action"] == ["stopped"]
    app = lookup_app(make_app, "LOOKUP-a = verbs verb AS api_verb")
    assert run(app, {"api_verb": "Stop"}).fields["action"] == ["stopped"]


def test_cidr_lookup_with_default_max_matches_returns_every_match(make_app):
    app = lookup_app(make_app, "LOOKUP-a = nets cidr AS ip OUTPUT zone")
    assert run(app, {"ip": "10.1.1.1"}).fields["zone"] == ["internal", "external"]
    assert run(app, {"ip": "8.8.8.8"}).fields["zone"] == ["external"]


def test_case_insensitive_lookup_max_matches_and_default_match(make_app):
    app = lookup_app(make_app, "LOOKUP-a = colors name OUTPUT color")
    assert run(app, {"name": "SKY"}).fields["color"] == ["blue", "grey"]
    assert run(app, {"name": "moon"}).fields["color"] == ["unknown"]


def test_multivalue_input_looks_up_each_value(make_app):
    app = lookup_app(make_app, "LOOKUP-a = verbs verb AS verb{} OUTPUT action")
    assert run(app, {"verb": ["Stop", "Create", "Nope"]}).fields["action"] == ["stopped", "created"]


def test_missing_input_field_means_no_match(make_app):
    app = lookup_app(make_app, "LOOKUP-a = actions eventName status OUTPUTNEW action")
    assert "action" not in run(app, {"eventName": "CreateUser"}).fields


# ------------------------------------------------------------------------------------------------- eventtypes, tags

EVENTTYPES = f"""\
[et_signin]
search = sourcetype={ST} eventName=ConsoleSignin

[et_change]
search = sourcetype={ST} (eventName=Create* OR eventName=Delete*) NOT eventName=DeleteTrail

[et_account]
search = sourcetype={ST} eventName IN (CreateUser, DeleteUser)

[et_from_lookup]
search = sourcetype={ST} action=created

[et_disabled]
search = sourcetype={ST}
disabled = 1

[et_nested]
search = eventtype=et_account userType!=root
"""
TAGS = """\
[eventtype=et_signin]
authentication = enabled

[eventtype=et_change]
change = enabled
obsolete = disabled

[eventtype=et_account]
change = enabled
account = enabled

[eventtype=et_disabled]
never = enabled

[userType=root]
privileged = enabled
"""


def tagged_app(make_app):
    return make_app(props=props("LOOKUP-a = verbs verb OUTPUT action"), transforms=TRANSFORMS, lookups=LOOKUPS,
                    eventtypes=EVENTTYPES, tags=TAGS)


def test_eventtypes_and_tags_union(make_app):
    result = run(tagged_app(make_app), {"eventName": "CreateUser", "verb": "Create", "userType": "ram"})
    assert result.eventtypes == ["et_account", "et_change", "et_from_lookup", "et_nested"]
    assert result.tags == ["account", "change"]
    assert result.fields["tag"] == ["account", "change"]
    assert result.fields["eventtype"] == result.eventtypes


def test_not_excludes_and_disabled_eventtypes_and_tags_do_not_apply(make_app):
    result = run(tagged_app(make_app), {"eventName": "DeleteTrail"})
    assert result.eventtypes == [] and result.tags == []
    assert "tag" not in result.fields and "eventtype" not in result.fields


def test_field_value_tags(make_app):
    result = run(tagged_app(make_app), {"eventName": "ConsoleSignin", "userType": "root"})
    assert result.eventtypes == ["et_signin"]
    assert result.tags == ["authentication", "privileged"]


def test_eventtype_search_error_is_reported(make_app):
    app = make_app(props=props(), eventtypes="[bad]\nsearch = just words\n")
    with pytest.raises(KnowledgeError, match="eventtype bad"):
        run(app, {"a": "1"})


def test_props_fields_follow_pytest_splunk_addon(make_app):
    app = make_app(props=props("FIELDALIAS-a = x AS y z ASNEW w", 'EVAL-e = "1"', "EVAL-gone = null()",
                               "LOOKUP-l = verbs verb AS api_verb OUTPUTNEW action AS vendor_action",
                               "LOOKUP-m = nets cidr AS ip"),
                   transforms=TRANSFORMS, lookups=LOOKUPS)
    assert App(app).props_fields(ST) == {
        "FIELDALIAS-a": ["x", "y", "z", "w"],
        "EVAL-e": ["e"],
        "LOOKUP-l": ["api_verb", "vendor_action"],
        "LOOKUP-m": ["ip", "cidr", "zone"],
    }
