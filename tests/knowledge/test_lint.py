"""The lint: a clean app passes, and each planted mistake is reported."""

import pytest

from tests.knowledge.lint import lint_app, main

CLEAN = dict(
    props="""\
        [source::...demo*.log]
        SHOULD_LINEMERGE = false

        [demo:st]
        TRUNCATE = 100000
        KV_MODE = json
        FIELDALIAS-a = ip AS src
        EVAL-app = "demo"
        LOOKUP-a = verbs verb OUTPUTNEW action
        """,
    transforms="[verbs]\nfilename = verbs.csv\nmatch_type = WILDCARD(verb)\n",
    eventtypes="[demo_et]\nsearch = sourcetype=demo:st verb=Create*\n",
    tags="[eventtype=demo_et]\nchange = enabled\n",
    lookups={"verbs.csv": "verb,action\nCreate*,created\n"},
)


def with_changes(**changes):
    confs = dict(CLEAN)
    confs.update(changes)
    return confs


def test_clean_app_has_no_findings(make_app):
    assert lint_app(make_app(**CLEAN)) == []
    assert main(["--app", make_app(**CLEAN)]) == 0


@pytest.mark.parametrize("changes, expected", [
    (dict(props=CLEAN["props"] + "EVAL-app = \"again\"\n"), "duplicate key 'EVAL-app'"),
    (dict(props=CLEAN["props"] + "[demo:st]\nKV_MODE = json\n"), "duplicate stanza [demo:st]"),
    (dict(tags=CLEAN["tags"] + "[eventtype=demo_et]\naudit = enabled\n"), "duplicate stanza"),
    (dict(props=CLEAN["props"].replace("TRUNCATE = 100000\n", "")), "does not set TRUNCATE"),
    (dict(props=CLEAN["props"].replace("KV_MODE = json", "KV_MODE = json\nINDEXED_EXTRACTIONS = json")),
     "extracted twice"),
    (dict(props=CLEAN["props"].replace('"demo"', "strftime(x, \"%s\")")), "not supported by the simulator"),
    (dict(props=CLEAN["props"].replace('"demo"', "a.b")), "single-quote"),
    (dict(props=CLEAN["props"].replace("verbs verb", "nosuch verb")), "no stanza [nosuch]"),
    (dict(transforms="[verbs]\nfilename = missing.csv\n"), "missing.csv is not in"),
    (dict(props=CLEAN["props"].replace("OUTPUTNEW action", "OUTPUTNEW act")), "has no column 'act'"),
    (dict(props=CLEAN["props"].replace("verbs verb", "verbs verb AS v OUTPUT x AS y verb2")),
     "has no column 'verb2'"),
    (dict(transforms="[verbs]\nfilename = verbs.csv\nmatch_type = WILDCARD(verbz)\n"), "match_type names 'verbz'"),
    (dict(props=CLEAN["props"].replace("ip AS src", "ip AS src src AS s2")), "aliases do not chain"),
    (dict(props=CLEAN["props"] + "FIELDALIAS-b = ip2 AS src\n"), "also written by"),
    (dict(props="[host::web*]\nEVAL-x = \"y\"\n" + CLEAN["props"]), "only sourcetype stanzas are simulated"),
    (dict(props=CLEAN["props"].replace("KV_MODE = json", "KV_MODE = auto")), "cannot load [demo:st]"),
    (dict(tags=CLEAN["tags"] + "[eventtype=ghost]\nchange = enabled\n"), "names an eventtype"),
    (dict(eventtypes=CLEAN["eventtypes"] + "[off]\nsearch = sourcetype=demo:st\ndisabled = 1\n",
          tags=CLEAN["tags"] + "[eventtype=off]\nx = enabled\n"), "names an eventtype"),
    (dict(tags=CLEAN["tags"] + "[src=1.2.3.4]\nx = on\n"), "expected enabled or disabled"),
    (dict(eventtypes="[demo_et]\nsearch = verb=Create*\n"), "does not restrict sourcetype"),
    (dict(eventtypes="[demo_et]\nsearch = sourcetype=other:st verb=Create*\n"), "not all of which"),
    (dict(eventtypes="[demo_et]\nsearch = sourcetype=demo:st OR verb=x\n"), "does not restrict sourcetype"),
    (dict(eventtypes="[demo_et]\nsearch = sourcetype=demo:st Create\n"), "bare term"),
    (dict(eventtypes="[demo_et]\nsearch = sourcetype=demo:st\ntags = change\n"), "deprecated"),
])
def test_each_mistake_is_found(make_app, changes, expected):
    findings = lint_app(make_app(**with_changes(**changes)))
    assert any(expected in finding for finding in findings), findings


def test_findings_name_file_and_line(make_app):
    findings = lint_app(make_app(**with_changes(props=CLEAN["props"] + "EVAL-app = \"again\"\n")))
    assert findings[0].startswith("props.conf:10: duplicate key")
    assert main(["--app", make_app(**with_changes(props=CLEAN["props"] + "EVAL-app = \"x\"\n"))]) == 1
