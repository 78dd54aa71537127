"""The command line on a tiny fixture app and sample folder, run as a subprocess under each Splunk Python."""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.knowledge.fixture_app import write_app
from tests.splunk_runner.runner import interpreters

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHONS = interpreters()

PROPS = """\
[demo:auth]
KV_MODE = json
TRUNCATE = 100000
FIELDALIAS-src = ip AS src
EVAL-action = if(ok="yes", "success", "failure")
EVAL-app = "demo"
EVAL-dest = "login.example"
"""
EVENTTYPES = "[demo_login]\nsearch = sourcetype=demo:auth kind=login\n"
TAGS = "[eventtype=demo_login]\nauthentication = enabled\n"
DATA_CONF = "[demo.xml]\nsourcetype = demo:auth\ninput_type = modinput\nrequirement_test_sample = 1\n"


def sample_xml(*events: str) -> str:
    return textwrap.dedent("""\
        <?xml version="1.0" encoding="UTF-8"?>
        <device>
          <vendor>Example</vendor><product>Demo</product><version id="1"/>
        {}
        </device>
        """).format("\n".join(events))


def event_xml(name: str, raw: str, fields: dict, models=("Authentication",), exceptions: str = "<exceptions/>",
              missing: str = "<missing_recommended_fields/>") -> str:
    field_xml = "".join(f'<field name="{k}" value="{v}"/>' for k, v in fields.items())
    model_xml = "".join(f"<model>{m}</model>" for m in models)
    return (f'<event code="{name}" name="{name}" format="json">'
            f'<transport type="modinput" host="h" source="demo://in" sourcetype="demo:auth"/>'
            f"<raw><![CDATA[{raw}]]></raw>"
            f'<cim version="6.0"><models>{model_xml}</models><cim_fields>{field_xml}</cim_fields>'
            f"{missing}{exceptions}</cim></event>")


GOOD = event_xml("good", '{"kind":"login","ok":"yes","ip":"192.0.2.1","user":"alice"}',
                 {"action": "success", "src": "192.0.2.1", "user": "alice"})
BAD = event_xml("bad", '{"kind":"login","ok":"no","ip":"192.0.2.2","user":"bob"}',
                {"action": "success", "src": "192.0.2.2", "user": "bob"})


def make_fixture(tmp_path, *events: str):
    app = write_app(str(tmp_path / "app"), props=PROPS, eventtypes=EVENTTYPES, tags=TAGS)
    samples = tmp_path / "samples"
    samples.mkdir()
    (samples / "demo.xml").write_text(sample_xml(*events), encoding="utf-8")
    (tmp_path / "pytest-splunk-addon-data.conf").write_text(DATA_CONF, encoding="utf-8")
    return app, str(samples)


def simulate(python: str, app: str, samples: str):
    return subprocess.run([python, "-m", "tests.knowledge.simulate", "--app", app, "--samples", samples],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120,
                          env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))


@pytest.mark.parametrize("python_label", sorted(PYTHONS), ids=lambda label: f"py{label}")
def test_cli_reports_each_event_and_fails_on_a_wrong_value(tmp_path, python_label):
    app, samples = make_fixture(tmp_path, GOOD, BAD)
    proc = simulate(PYTHONS[python_label], app, samples)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert lines[-1] == "1 passed, 1 failed"
    assert lines[0] == "PASS demo.xml#1 good [demo:auth] models=Authentication"
    assert lines[1].startswith("FAIL demo.xml#2 bad [demo:auth] models=Authentication :: ")
    assert "action: expected 'success', got 'failure'" in lines[1]


@pytest.mark.parametrize("python_label", sorted(PYTHONS), ids=lambda label: f"py{label}")
def test_cli_passes_a_clean_sample_set(tmp_path, python_label):
    app, samples = make_fixture(tmp_path, GOOD)
    proc = simulate(PYTHONS[python_label], app, samples)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == "1 passed, 0 failed"


def test_cli_fails_when_the_declared_model_is_not_what_the_tags_give(tmp_path):
    wrong_model = event_xml("wrong", '{"kind":"login","ok":"yes","ip":"192.0.2.1","user":"alice"}',
                            {"action": "success"}, models=("Change:Account_Management",))
    app, samples = make_fixture(tmp_path, wrong_model)
    proc = simulate(sys.executable, app, samples)
    assert proc.returncode == 1
    assert "models: declared Change_Account_Management, tags authentication give Authentication" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "0 passed, 1 failed"


def test_cli_flags_a_verdict_that_depends_on_empty_json_values(tmp_path):
    fragile = event_xml("fragile", '{"kind":"login","ok":"yes","ip":"192.0.2.1","user":"alice","note":""}',
                        {"action": "success", "note": ""})
    app, samples = make_fixture(tmp_path, fragile)
    proc = simulate(sys.executable, app, samples)
    assert proc.returncode == 1
    assert "fragile: the outcome changes when Splunk drops empty JSON values" in proc.stdout


def test_cli_with_no_samples_fails(tmp_path):
    app, samples = make_fixture(tmp_path)
    os.remove(os.path.join(samples, "demo.xml"))
    proc = simulate(sys.executable, app, samples)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1] == "0 passed, 0 failed"


def test_cli_rejects_a_missing_app_folder(tmp_path):
    proc = simulate(sys.executable, str(tmp_path / "nope"), str(tmp_path))
    assert proc.returncode == 2 and "is not a folder" in proc.stderr


def test_cli_leaves_exception_fields_out_and_explains_required_fields_listed_as_recommended(tmp_path):
    raw = '{"kind":"login","ok":"yes","ip":"192.0.2.1"}'
    excepted = event_xml("excepted", raw, {"action": "never-compared", "src": "192.0.2.1"},
                         exceptions='<exceptions><field name="action" value="x" reason="r"/>'
                                    '<field name="user" value="" reason="r"/></exceptions>')
    listed = event_xml("listed", raw, {"src": "192.0.2.1"},
                       missing="<missing_recommended_fields><field>user</field></missing_recommended_fields>")
    app, samples = make_fixture(tmp_path, excepted, listed)
    proc = simulate(sys.executable, app, samples)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("PASS demo.xml#1 excepted"), proc.stdout
    assert ("Authentication: required field user is missing (listed in <missing_recommended_fields>, but the model "
            "requires it)") in lines[1]
    assert lines[-1] == "1 passed, 1 failed"


def test_cli_rejects_a_props_field_that_is_a_dash(tmp_path):
    dashed = event_xml("dashed", '{"kind":"login","ok":"yes","ip":"-","user":"alice"}', {"action": "success"})
    app, samples = make_fixture(tmp_path, dashed)
    proc = simulate(sys.executable, app, samples)
    assert proc.returncode == 1
    assert "props field ip='-': PSA's no-dash-not-empty field test fails" in proc.stdout
    assert "props field src='-'" in proc.stdout


def test_cli_reports_sample_format_problems(tmp_path):
    broken = GOOD.replace('type="modinput"', 'type="carrier-pigeon"').replace("<cim ", "<notcim ").replace(
        "</cim>", "</notcim>")
    app, samples = make_fixture(tmp_path, broken)
    with open(os.path.join(samples, "demo.xml"), encoding="utf-8") as handle:
        text = handle.read().replace("<vendor>Example</vendor>", "")
    with open(os.path.join(samples, "demo.xml"), "w", encoding="utf-8") as handle:
        handle.write(text)
    (tmp_path / "pytest-splunk-addon-data.conf").write_text(
        DATA_CONF + "sourcetype_to_search = other:st\n", encoding="utf-8")
    proc = simulate(sys.executable, app, samples)
    assert proc.returncode == 1
    for expected in ("<device> has no <vendor>", "transport type 'carrier-pigeon' is not one PSA accepts",
                     "the event has no <cim>", "ingests sourcetype demo:auth but searches other:st"):
        assert expected in proc.stdout, proc.stdout


def test_cli_reports_a_malformed_sample_file_as_a_failure(tmp_path):
    app, samples = make_fixture(tmp_path, GOOD)
    with open(os.path.join(samples, "broken.xml"), "w", encoding="utf-8") as handle:
        handle.write("<device><event>")
    proc = simulate(sys.executable, app, samples)
    assert proc.returncode == 1
    assert any(line.startswith("FAIL broken.xml#0 (file) [?] models=- :: not well-formed XML")
               for line in proc.stdout.splitlines()), proc.stdout
    assert proc.stdout.splitlines()[-1] == "1 passed, 1 failed"


def test_cli_flags_a_verdict_that_depends_on_json_nulls(tmp_path):
    fragile = event_xml("nulled", '{"kind":"login","ok":"yes","ip":"192.0.2.1","user":null}', {"action": "success"})
    app, samples = make_fixture(tmp_path, fragile)
    proc = simulate(sys.executable, app, samples)
    assert proc.returncode == 1
    assert "fragile: the outcome changes when Splunk drops JSON nulls" in proc.stdout
