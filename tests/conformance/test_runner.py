"""The modular-input runner launches an app like splunkd and parses its stream, checked on a tiny fake app
(stdlib only) under each Splunk-runtime Python."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

from tests.splunk_runner import ModInputRunner, StreamParser, interpreters, read_conf

FAKE_SCRIPT = textwrap.dedent('''
    """Fake modular input: echoes its stanza as events until SIGTERM (stdlib only)."""
    import json
    import os
    import signal
    import sys
    import threading
    import xml.etree.ElementTree as ElementTree
    from xml.sax.saxutils import escape

    import fake_helper  # a sibling module: importing it must not leave a __pycache__ in the app

    SCHEME = (
        "<scheme><title>aliyun_sls</title><description>Fake SLS input</description>"
        "<use_external_validation>true</use_external_validation><use_single_instance>false</use_single_instance>"
        "<streaming_mode>xml</streaming_mode><endpoint><args>"
        "<arg name=\\"name\\"><title>Name</title></arg>"
        "<arg name=\\"account\\"><title>Account</title><data_type>string</data_type>"
        "<required_on_create>1</required_on_create><required_on_edit>0</required_on_edit></arg>"
        "</args></endpoint></scheme>"
    )


    def params_of(element):
        params = {p.get("name"): p.text or "" for p in element.findall("param")}
        for plist in element.findall("param_list"):
            params[plist.get("name")] = [v.text or "" for v in plist.findall("value")]
        return params


    def event(stanza, data, time="1700000000.123", host="h1"):
        return ('<event stanza="%s" unbroken="1"><time>%s</time><host>%s</host><source>fake</source>'
                "<sourcetype>aliyun:sls</sourcetype><index>main</index><data>%s</data><done /></event>"
                % (escape(stanza, {'"': "&quot;"}), time, host, escape(data)))


    def run():
        root = ElementTree.parse(sys.stdin).getroot()  # to EOF, as splunklib does
        stanza = root.find("configuration/stanza")
        name = stanza.get("name")
        params = params_of(stanza)
        stop = threading.Event()
        if params.get("ignore_sigterm") == "1":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        else:
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        facts = {
            "params": params, "app": stanza.get("app"), "cwd": os.getcwd(),
            "splunk_home": os.environ.get("SPLUNK_HOME"), "dont_write_bytecode": sys.dont_write_bytecode,
            "pythonpath": os.environ.get("PYTHONPATH"), "python": "%d.%d" % sys.version_info[:2],
            "server_uri": root.findtext("server_uri"), "session_key": root.findtext("session_key"),
            "checkpoint_dir": root.findtext("checkpoint_dir"), "server_host": root.findtext("server_host"),
            "script": os.path.abspath(__file__), "helper": fake_helper.NAME,
        }
        out = sys.stdout
        out.write("<stream>" + event(name, json.dumps(facts)))
        out.flush()
        count = int(params.get("count", "0"))
        for number in range(count):
            # One <stream> document per event after the first, like solnlib's ClassicEventWriter.
            if number == 1:
                out.write("</stream>")
            if number >= 1:
                out.write("<stream>")
            out.write(event(name, json.dumps({"n": number, "text": "<&> \\u00e9\\u4e2d"})))
            if number >= 1:
                out.write("</stream>")
            out.flush()
            if stop.wait(float(params.get("pace", "0"))):
                break
        if count <= 1:
            out.write("</stream>")
            out.flush()
        sys.stderr.write("INFO fake input started stanza=%s\\n" % name)
        sys.stderr.flush()
        if params.get("exit_now") == "1":
            return 3
        while not stop.wait(0.05):
            pass
        sys.stderr.write("INFO fake input stopping on SIGTERM\\n")
        return 0


    def validate():
        root = ElementTree.parse(sys.stdin).getroot()
        item = root.find("item")
        params = params_of(item)
        if params.get("fail"):
            sys.stdout.write("<error><message>%s</message></error>" % escape(params["fail"] + " on " + item.get("name")))
            return 1
        return 0


    if __name__ == "__main__":
        if sys.argv[1:] == ["--scheme"]:
            sys.stdout.write(SCHEME)
            sys.exit(0)
        if sys.argv[1:] == ["--validate-arguments"]:
            sys.exit(validate())
        sys.exit(run())
''')

FAKE_INPUTS_CONF = textwrap.dedent("""
    # app defaults, merged by splunkd into every stanza
    [aliyun_sls]
    python.version = python3
    python.required = 3.9, 3.13
    interval = 60
    index = default_from_app
    description = first line\\
    second line
""")

PYTHONS = interpreters()


@pytest.fixture()
def fake_app(tmp_path: Path) -> Path:
    app = tmp_path / "built" / "TA-aliyun-sls"
    (app / "bin").mkdir(parents=True)
    (app / "default").mkdir()
    (app / "bin" / "aliyun_sls.py").write_text(FAKE_SCRIPT, encoding="utf-8")
    (app / "bin" / "fake_helper.py").write_text('NAME = "helper"\n', encoding="utf-8")
    (app / "default" / "inputs.conf").write_text(FAKE_INPUTS_CONF, encoding="utf-8")
    return app


@pytest.fixture(params=sorted(PYTHONS), ids=lambda label: f"py{label}")
def runner(request: pytest.FixtureRequest, fake_app: Path) -> Iterator[ModInputRunner]:
    with ModInputRunner(str(fake_app), PYTHONS[request.param]) as modinput:
        yield modinput


def first_facts(events: list) -> dict:
    return json.loads(events[0]["data"])


def test_interpreters_are_the_splunk_runtimes() -> None:
    assert PYTHONS, "at least the current interpreter"
    for label, path in PYTHONS.items():
        assert os.access(path, os.X_OK)
        if label != "current":
            assert label in ("3.9", "3.13") and f"/{label}." in path


def test_stanza_runs_like_splunkd_and_events_are_parsed(runner: ModInputRunner) -> None:
    running = runner.start("prod", {"account": "acct1", "count": "2", "regions": ["cn-a", "cn-b"]},
                           server_uri="https://127.0.0.1:8089", session_key="sk")
    events = running.wait_for_events(3, timeout=30)
    rc = running.terminate(timeout=20)
    assert rc == 0 and not running.killed
    assert running.protocol_errors == []
    assert running.stream_closed
    assert len(events) == 3
    facts = first_facts(events)
    label = next(label for label, path in PYTHONS.items() if path == runner.python)
    if label != "current":
        assert facts["python"] == label
    assert facts["params"]["account"] == "acct1"
    assert facts["params"]["regions"] == ["cn-a", "cn-b"]
    # Defaults merged as splunkd does: system (host, disabled) < app default/inputs.conf < stanza.
    assert facts["params"]["host"] == "hf1" and facts["params"]["disabled"] == "0"
    assert facts["params"]["index"] == "default_from_app"
    assert facts["params"]["python.required"] == "3.9, 3.13"
    assert facts["params"]["description"] == "first line\nsecond line"
    assert facts["app"] == "TA-aliyun-sls"
    assert facts["server_uri"] == "https://127.0.0.1:8089" and facts["session_key"] == "sk"
    assert facts["server_host"] == "hf1"
    assert facts["checkpoint_dir"] == os.path.join(runner.splunk_home, "var", "lib", "splunk", "modinputs", "aliyun_sls")
    assert facts["splunk_home"] == runner.splunk_home and facts["cwd"] == runner.splunk_home
    assert facts["script"] == os.path.join(runner.splunk_home, "etc", "apps", "TA-aliyun-sls", "bin", "aliyun_sls.py")
    assert facts["dont_write_bytecode"] is True and facts["pythonpath"] is None
    assert facts["helper"] == "helper"
    assert os.path.isdir(runner.log_dir)
    second = events[1]
    assert {key: second[key] for key in ("stanza", "time", "host", "source", "sourcetype", "index", "unbroken", "done")} == {
        "stanza": "aliyun_sls://prod", "time": "1700000000.123", "host": "h1", "source": "fake",
        "sourcetype": "aliyun:sls", "index": "main", "unbroken": "1", "done": True}
    assert json.loads(second["data"]) == {"n": 0, "text": "<&> \u00e9\u4e2d"}
    assert "fake input stopping on SIGTERM" in running.stderr_text()


def test_events_are_available_while_the_input_runs(runner: ModInputRunner) -> None:
    with runner.start("live", {"count": "100000", "pace": "0.02"}, "https://127.0.0.1:1", "sk") as running:
        events = running.wait_for_events(6, timeout=30)
        assert len(events) >= 6
        assert running.running
        assert [json.loads(event["data"])["n"] for event in events[1:6]] == [0, 1, 2, 3, 4]
    assert running.returncode == 0
    assert running.protocol_errors == []


def test_no_bytecode_is_written_into_the_app(runner: ModInputRunner) -> None:
    running = runner.start("pyc", {}, "https://127.0.0.1:1", "sk")
    running.wait_for_events(1, timeout=30)
    running.terminate(timeout=20)
    written = [str(path) for path in Path(runner.app_dir).rglob("*") if path.suffix in (".pyc", ".pyo")
               or path.name == "__pycache__"]
    assert written == []


def test_sigterm_ignored_escalates_to_kill(runner: ModInputRunner) -> None:
    running = runner.start("stubborn", {"ignore_sigterm": "1"}, "https://127.0.0.1:1", "sk")
    assert running.wait_for_stderr("fake input started", timeout=30)
    rc = running.terminate(timeout=0.5)
    assert running.killed and rc != 0


def test_input_that_exits_by_itself(runner: ModInputRunner) -> None:
    running = runner.start("short", {"exit_now": "1"}, "https://127.0.0.1:1", "sk")
    assert running.wait(timeout=30) == 3
    assert len(running.events) == 1 and running.stream_closed


def test_scheme_is_parsed(runner: ModInputRunner) -> None:
    scheme = runner.scheme()
    assert (scheme.title, scheme.streaming_mode) == ("aliyun_sls", "xml")
    assert scheme.use_external_validation and not scheme.use_single_instance
    assert scheme.args["account"]["required_on_create"] == "1"
    assert set(scheme.args) == {"name", "account"}


def test_validate_arguments(runner: ModInputRunner) -> None:
    good = runner.validate("aliyun_sls://prod", {"account": "acct1"}, "https://127.0.0.1:1", "sk")
    assert (good.returncode, good.error_message, good.ok) == (0, None, True)
    bad = runner.validate("prod", {"account": "acct1", "fail": "Account <acct1> is unknown"})
    assert (bad.returncode, bad.ok) == (1, False)
    assert bad.error_message == "Account <acct1> is unknown on prod"


def test_missing_script_is_reported(tmp_path: Path) -> None:
    (tmp_path / "empty" / "bin").mkdir(parents=True)
    with ModInputRunner(str(tmp_path / "empty")) as modinput:
        with pytest.raises(FileNotFoundError):
            modinput.scheme()


def test_stream_parser_handles_any_chunking() -> None:
    stream = ('<?xml version="1.0"?><stream><event stanza="s://a" unbroken="1"><time>1</time>'
              "<data>{&quot;a&quot;: &quot;&lt;x&gt;&quot;}</data><done/></event></stream>\n"
              '<stream><event stanza="s://a"><data>two</data></event>\n</stream>')
    parser = StreamParser()
    for character in stream:
        parser.feed(character)
    parser.close()
    assert parser.errors == []
    assert [event["data"] for event in parser.events] == ['{"a": "<x>"}', "two"]
    assert parser.events[0]["time"] == "1" and parser.events[1]["time"] is None
    assert parser.events[0]["done"] and not parser.events[1]["done"]
    assert (parser.streams_opened, parser.streams_closed) == (2, 2)


def test_stream_parser_reports_what_splunkd_would_reject() -> None:
    parser = StreamParser()
    parser.feed("hello <stream></stream><event><data>x</data></event><stream><event><data>a&b</data></event>")
    parser.feed("<stream><event><data>tail")
    parser.close()
    assert len(parser.errors) == 5
    assert "unexpected text" in parser.errors[0]
    assert parser.errors[1] == "<event> outside <stream>"
    assert "malformed event" in parser.errors[2]
    assert parser.errors[3] == "<stream> opened inside an open <stream>"
    assert "stdout ended inside an element" in parser.errors[4]


def test_read_conf(tmp_path: Path) -> None:
    conf = tmp_path / "inputs.conf"
    conf.write_text(FAKE_INPUTS_CONF, encoding="utf-8")
    assert read_conf(str(conf))["aliyun_sls"]["python.required"] == "3.9, 3.13"
    assert read_conf(str(tmp_path / "missing.conf")) == {}
