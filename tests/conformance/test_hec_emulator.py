"""The HEC emulator answers like Splunk HEC, checked with an independent client (plain ``requests``)."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import pytest
import requests
import urllib3

from tests.emulators.hec import HEC_REPLIES, HecEmulator

ROOT = Path(__file__).resolve().parents[2]
EVENT = "/services/collector/event"
ACK = "/services/collector/ack"


@pytest.fixture()
def hec() -> Iterator[HecEmulator]:
    tokens = {
        "ack-tok": {"ack": True},
        "plain-tok": {"ack": False},
        "scoped-tok": {"ack": False, "indexes": ["sls", "sls_audit"]},
        "off-tok": {"disabled": True},
    }
    with HecEmulator(tokens=tokens) as emulator:
        yield emulator


@pytest.fixture()
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


def headers(token: str = "plain-tok", channel: Optional[str] = None, **extra: str) -> Dict[str, str]:
    result = {"Authorization": f"Splunk {token}"}
    if channel:
        result["X-Splunk-Request-Channel"] = channel
    result.update(extra)
    return result


def body(*envelopes: Dict[str, Any]) -> str:
    return "".join(json.dumps(envelope) for envelope in envelopes)


def test_reply_table_covers_codes_0_to_20_with_splunk_statuses() -> None:
    assert sorted(HEC_REPLIES) == list(range(21))
    assert HEC_REPLIES[0] == (200, "Success")
    assert HEC_REPLIES[9] == (503, "Server is busy")
    assert HEC_REPLIES[17] == (200, "HEC is healthy")
    assert {code for code, (status, _) in HEC_REPLIES.items() if status == 503} == {9, 18, 19, 20}
    assert {code for code, (status, _) in HEC_REPLIES.items() if status == 401} == {2, 3}


def test_batch_of_envelopes_is_recorded_in_order(hec: HecEmulator, session: requests.Session) -> None:
    batch = body({"event": {"k": "v"}, "time": 1700000000.5, "host": "h", "source": "s",
                  "sourcetype": "aliyun:sls", "index": "main", "fields": {"sls_shard": "0"}},
                 {"event": "second"})
    reply = session.post(hec.url + EVENT, data=batch, headers=headers())
    assert reply.status_code == 200
    assert reply.json() == {"text": "Success", "code": 0}
    events = hec.events()
    assert [event["event"] for event in events] == [{"k": "v"}, "second"]
    assert [event["_seq"] for event in events] == [0, 1]
    assert events[0]["fields"] == {"sls_shard": "0"} and events[0]["time"] == 1700000000.5
    assert all(event["_ack_id"] is None for event in events)


def test_collector_alias_accepts_gzip_and_newline_separated_envelopes(hec: HecEmulator, session: requests.Session) -> None:
    payload = gzip.compress(("\n".join(json.dumps({"event": n}) for n in range(3)) + "\n").encode())
    reply = session.post(hec.url + "/services/collector", data=payload,
                         headers=headers(**{"Content-Encoding": "gzip"}))
    assert reply.json()["code"] == 0
    assert [event["event"] for event in hec.events()] == [0, 1, 2]


def test_corrupt_gzip_is_invalid_data_format(hec: HecEmulator, session: requests.Session) -> None:
    reply = session.post(hec.url + EVENT, data=b"not gzip", headers=headers(**{"Content-Encoding": "gzip"}))
    assert (reply.status_code, reply.json()["code"]) == (400, 6)


def test_connection_is_kept_alive_between_requests(hec: HecEmulator) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", hec.port, timeout=10)
    try:
        for number in range(3):
            connection.request("POST", EVENT, body=body({"event": number}), headers=headers())
            response = connection.getresponse()
            assert response.status == 200
            assert response.getheader("Connection", "").lower() != "close"
            response.read()
        # http.client reconnects silently only after a close; the same socket served all three.
        assert connection.sock is not None
    finally:
        connection.close()
    assert len(hec.events()) == 3


@pytest.mark.parametrize(
    ("auth", "url_suffix", "status", "code"),
    [
        (None, "", 401, 2),
        ("Bearer plain-tok", "", 401, 3),
        ("Splunk", "", 401, 3),
        ("Splunk nope", "", 403, 4),
        ("Splunk off-tok", "", 403, 1),
        (None, "?token=plain-tok", 400, 16),
    ],
)
def test_authentication_failures(hec: HecEmulator, session: requests.Session, auth: Optional[str],
                                 url_suffix: str, status: int, code: int) -> None:
    request_headers = {"Authorization": auth} if auth else {}
    reply = session.post(hec.url + EVENT + url_suffix, data=body({"event": "x"}), headers=request_headers)
    assert (reply.status_code, reply.json()["code"], reply.json()["text"]) == (status, code, HEC_REPLIES[code][1])
    assert hec.events() == []


def test_ack_token_requires_a_guid_channel(hec: HecEmulator, session: requests.Session) -> None:
    missing = session.post(hec.url + EVENT, data=body({"event": "x"}), headers=headers("ack-tok"))
    assert (missing.status_code, missing.json()["code"]) == (400, 10)
    invalid = session.post(hec.url + EVENT, data=body({"event": "x"}), headers=headers("ack-tok", "not-a-guid"))
    assert (invalid.status_code, invalid.json()["code"]) == (400, 11)
    assert hec.events() == []


def test_ack_ids_count_per_channel_and_acks_are_consumed(hec: HecEmulator, session: requests.Session) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    ids = [session.post(hec.url + EVENT, data=body({"event": n}), headers=headers("ack-tok", channel)).json()["ackId"]
           for n, channel in enumerate([first, first, second])]
    assert ids == [0, 1, 0]
    acks = session.post(hec.url + ACK, json={"acks": [0, 1, 7]}, headers=headers("ack-tok", first)).json()
    assert acks == {"acks": {"0": True, "1": True, "7": False}}
    again = session.post(hec.url + ACK, json={"acks": [0]}, headers=headers("ack-tok", first)).json()
    assert again == {"acks": {"0": False}}
    assert [(event["_channel"], event["_ack_id"]) for event in hec.events()] == [(first, 0), (first, 1), (second, 0)]


def test_ack_turns_true_only_after_the_delay(session: requests.Session) -> None:
    with HecEmulator(tokens={"t": {"ack": True}}, ack_delay=30.0) as slow:
        channel = str(uuid.uuid4())
        ack_id = session.post(slow.url + EVENT, data=body({"event": 1}), headers=headers("t", channel)).json()["ackId"]
        polled = session.post(slow.url + ACK, json={"acks": [ack_id]}, headers=headers("t", channel)).json()
        assert polled == {"acks": {str(ack_id): False}}
        assert slow.pending_acks() == 1
    with HecEmulator(tokens={"t": {"ack": True}}, ack_delay=0.2) as quick:
        channel = str(uuid.uuid4())
        ack_id = session.post(quick.url + EVENT, data=body({"event": 1}), headers=headers("t", channel)).json()["ackId"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            polled = session.post(quick.url + ACK, json={"acks": [ack_id]}, headers=headers("t", channel)).json()
            if polled["acks"][str(ack_id)]:
                break
            time.sleep(0.05)
        assert polled == {"acks": {str(ack_id): True}}
        assert quick.pending_acks() == 0


def test_never_ack_for_the_next_n_requests(hec: HecEmulator, session: requests.Session) -> None:
    channel = str(uuid.uuid4())
    hec.faults.never_ack(n=2)
    ids = [session.post(hec.url + EVENT, data=body({"event": n}), headers=headers("ack-tok", channel)).json()["ackId"]
           for n in range(3)]
    acks = session.post(hec.url + ACK, json={"acks": ids}, headers=headers("ack-tok", channel)).json()["acks"]
    assert acks == {"0": False, "1": False, "2": True}
    assert len(hec.events()) == 3  # the data was taken; only its acknowledgement never comes


def test_never_ack_for_all_requests_until_cleared(hec: HecEmulator, session: requests.Session) -> None:
    channel = str(uuid.uuid4())
    hec.faults.never_ack()
    stuck = [session.post(hec.url + EVENT, data=body({"event": n}), headers=headers("ack-tok", channel)).json()["ackId"]
             for n in range(3)]
    hec.faults.clear()
    fresh = session.post(hec.url + EVENT, data=body({"event": 9}), headers=headers("ack-tok", channel)).json()["ackId"]
    acks = session.post(hec.url + ACK, json={"acks": stuck + [fresh]}, headers=headers("ack-tok", channel)).json()["acks"]
    assert acks == {"0": False, "1": False, "2": False, "3": True}


def test_ack_endpoint_rules(hec: HecEmulator, session: requests.Session) -> None:
    channel = str(uuid.uuid4())
    disabled = session.post(hec.url + ACK, json={"acks": [0]}, headers=headers("plain-tok", channel))
    assert (disabled.status_code, disabled.json()["code"]) == (400, 14)
    no_channel = session.post(hec.url + ACK, json={"acks": [0]}, headers=headers("ack-tok"))
    assert no_channel.json()["code"] == 10
    malformed = session.post(hec.url + ACK, data="{}", headers=headers("ack-tok", channel))
    assert (malformed.status_code, malformed.json()["code"]) == (400, 6)


@pytest.mark.parametrize(
    ("payload", "code", "invalid_number"),
    [
        ("", 5, None),
        ("   \n", 5, None),
        ('{"event": "a"}{"event": ', 6, 1),
        ('[{"event": "a"}]', 6, 0),
        ('{"time": 1}', 12, 0),
        ('{"event": ""}', 13, 0),
        ('{"event": "ok"}{"event": "  "}', 13, 1),
        ('{"event": "a", "time": "yesterday"}', 6, 0),
        ('{"event": "a", "host": 5}', 6, 0),
        ('{"event": "a", "fields": {"nested": {"x": 1}}}', 15, 0),
        ('{"event": "a", "fields": ["x"]}', 15, 0),
    ],
)
def test_invalid_payloads(hec: HecEmulator, session: requests.Session, payload: str, code: int,
                          invalid_number: Optional[int]) -> None:
    reply = session.post(hec.url + EVENT, data=payload, headers=headers())
    assert reply.status_code == HEC_REPLIES[code][0]
    assert reply.json()["code"] == code
    assert reply.json().get("invalid-event-number") == invalid_number


def test_index_allow_list_and_partial_batches(hec: HecEmulator, session: requests.Session) -> None:
    allowed = session.post(hec.url + EVENT, data=body({"event": 1, "index": "sls"}, {"event": 2}),
                           headers=headers("scoped-tok"))
    assert allowed.json()["code"] == 0  # no index: the token's default (its first allowed index)
    rejected = session.post(hec.url + EVENT, data=body({"event": 3, "index": "sls_audit"}, {"event": 4, "index": "main"},
                                                       {"event": 5, "index": "sls"}), headers=headers("scoped-tok"))
    assert (rejected.status_code, rejected.json()) == (400, {"text": "Incorrect index", "code": 7,
                                                             "invalid-event-number": 1})
    # Splunk keeps the envelopes before the invalid one; a resend would duplicate them.
    assert [event["event"] for event in hec.events()] == [1, 2, 3]


def test_all_or_nothing_batches_when_partial_batches_is_off(session: requests.Session) -> None:
    with HecEmulator(tokens={"t": {"indexes": ["sls"]}}, partial_batches=False) as strict:
        reply = session.post(strict.url + EVENT, data=body({"event": 1}, {"event": 2, "index": "main"}),
                             headers=headers("t"))
        assert reply.json()["code"] == 7
        assert strict.events() == []


def test_size_limits(session: requests.Session) -> None:
    with HecEmulator(tokens={"t": {}}, max_content_length=1000, max_event_size=200) as small:
        too_long = session.post(small.url + EVENT, data=body({"event": "x" * 1200}), headers=headers("t"))
        assert too_long.status_code == 413
        assert "too large" in too_long.json()["text"]
        big_event = session.post(small.url + EVENT, data=body({"event": "ok"}, {"event": "y" * 300}),
                                 headers=headers("t"))
        assert (big_event.status_code, big_event.json()["code"], big_event.json()["invalid-event-number"]) == (400, 6, 1)
        fits = session.post(small.url + EVENT, data=body({"event": "z" * 150}), headers=headers("t"))
        assert fits.json()["code"] == 0
        assert [event["event"] for event in small.events()] == ["ok", "z" * 150]


def test_raw_endpoint_breaks_lines_and_takes_metadata_from_the_query(hec: HecEmulator, session: requests.Session) -> None:
    channel = str(uuid.uuid4())
    no_channel = session.post(hec.url + "/services/collector/raw", data="a\n", headers=headers())
    assert no_channel.json()["code"] == 10
    reply = session.post(hec.url + "/services/collector/raw?sourcetype=st&host=h1&index=main",
                         data="line one\r\nline two\n\n", headers=headers(channel=channel))
    assert reply.json()["code"] == 0
    assert [(e["event"], e["sourcetype"], e["host"], e["_endpoint"]) for e in hec.events()] == [
        ("line one", "st", "h1", "raw"), ("line two", "st", "h1", "raw")]


def test_health_and_unhealthy_switch(hec: HecEmulator, session: requests.Session) -> None:
    healthy = session.get(hec.url + "/services/collector/health")
    assert (healthy.status_code, healthy.json()) == (200, {"text": "HEC is healthy", "code": 17})
    bad_token = session.get(hec.url + "/services/collector/health", headers=headers("nope"))
    assert bad_token.status_code == 400
    hec.faults.health_unhealthy()
    sick = session.get(hec.url + "/services/collector/health", headers=headers())
    assert (sick.status_code, sick.json()["code"]) == (503, 18)
    hec.faults.clear()
    assert session.get(hec.url + "/services/collector/health").status_code == 200


def test_busy_for_a_duration_then_clear(hec: HecEmulator, session: requests.Session) -> None:
    hec.faults.busy_for(60)
    busy = session.post(hec.url + EVENT, data=body({"event": 1}), headers=headers())
    assert (busy.status_code, busy.json()) == (503, {"text": "Server is busy", "code": 9})
    assert hec.events() == [] and hec.requests["busy"] == 1
    hec.faults.clear()
    assert session.post(hec.url + EVENT, data=body({"event": 1}), headers=headers()).status_code == 200


def test_busy_for_expires_by_itself(hec: HecEmulator, session: requests.Session) -> None:
    hec.faults.busy_for(0.3)
    deadline = time.monotonic() + 10
    statuses = []
    while time.monotonic() < deadline:
        statuses.append(session.post(hec.url + EVENT, data=body({"event": 1}), headers=headers()).status_code)
        if statuses[-1] == 200:
            break
        time.sleep(0.05)
    assert statuses[0] == 503 and statuses[-1] == 200


def test_busy_rate_affects_about_that_share(hec: HecEmulator, session: requests.Session) -> None:
    hec.faults.busy_rate(0.5)
    statuses = [session.post(hec.url + EVENT, data=body({"event": n}), headers=headers()).status_code
                for n in range(60)]
    assert set(statuses) == {200, 503}
    assert len(hec.events()) == statuses.count(200)
    hec.faults.busy_rate(1.0)
    assert session.post(hec.url + EVENT, data=body({"event": 1}), headers=headers()).status_code == 503


def test_latency_delays_responses(hec: HecEmulator, session: requests.Session) -> None:
    hec.faults.latency(0.4)
    started = time.monotonic()
    reply = session.get(hec.url + "/services/collector/health")
    assert reply.status_code == 200
    assert time.monotonic() - started >= 0.4


def test_dropped_connection_before_accept_loses_the_request(hec: HecEmulator, session: requests.Session) -> None:
    hec.faults.drop_rate(1.0)
    with pytest.raises(requests.ConnectionError):
        session.post(hec.url + EVENT, data=body({"event": 1}), headers=headers())
    assert hec.events() == [] and hec.requests["dropped"] == 1


def test_dropped_connection_after_accept_keeps_the_events(hec: HecEmulator, session: requests.Session) -> None:
    hec.faults.drop_rate(1.0, after_accept=True)
    with pytest.raises(requests.ConnectionError):
        session.post(hec.url + EVENT, data=body({"event": 1}), headers=headers())
    hec.faults.clear()
    session.post(hec.url + EVENT, data=body({"event": 1}), headers=headers())
    assert [event["event"] for event in hec.events()] == [1, 1]  # a resend after a lost reply duplicates


def test_concurrent_senders_are_recorded_without_loss(hec: HecEmulator) -> None:
    senders, per_sender = 6, 20
    errors = []

    def send(sender: int) -> None:
        channel = str(uuid.uuid4())
        with requests.Session() as own:
            for number in range(per_sender):
                reply = own.post(hec.url + EVENT, data=body({"event": {"s": sender, "n": number}}),
                                 headers=headers("ack-tok", channel))
                if reply.status_code != 200:
                    errors.append(reply.text)

    threads = [threading.Thread(target=send, args=(sender,)) for sender in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    events = hec.events()
    assert sorted(event["_seq"] for event in events) == list(range(senders * per_sender))
    assert sorted((e["event"]["s"], e["event"]["n"]) for e in events) == [
        (s, n) for s in range(senders) for n in range(per_sender)]
    for sender in range(senders):
        ack_ids = [e["_ack_id"] for e in events if e["event"]["s"] == sender]
        assert ack_ids == list(range(per_sender))  # per channel, in send order


def test_wait_for_events_returns_once_enough_arrived(hec: HecEmulator, session: requests.Session) -> None:
    timer = threading.Timer(0.2, lambda: requests.post(hec.url + EVENT, data=body({"event": 1}), headers=headers()))
    timer.start()
    try:
        assert len(hec.wait_for_events(1, timeout=10)) == 1
    finally:
        timer.join()
    assert len(hec.wait_for_events(5, timeout=0.1)) == 1


def test_tls_with_a_generated_certificate(session: requests.Session) -> None:
    with HecEmulator(tokens={"t": {}}, tls=True) as secure:
        assert secure.url.startswith("https://127.0.0.1:")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            reply = session.post(secure.url + EVENT, data=body({"event": "tls"}), headers=headers("t"), verify=False)
        assert reply.json() == {"text": "Success", "code": 0}
        with pytest.raises(requests.exceptions.SSLError):
            session.post(secure.url + EVENT, data=body({"event": "tls"}), headers=headers("t"))


def test_record_file_gets_one_json_line_per_event(tmp_path: Path, session: requests.Session) -> None:
    record = tmp_path / "events.jsonl"
    with HecEmulator(tokens={"t": {}}, record_path=str(record)) as recording:
        session.post(recording.url + EVENT, data=body({"event": "a"}, {"event": "b"}), headers=headers("t"))
    lines = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    assert [(line["event"], line["_seq"]) for line in lines] == [("a", 0), ("b", 1)]


def test_stop_closes_idle_keep_alive_connections() -> None:
    emulator = HecEmulator(tokens={"t": {}}).start()
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=10)
    connection.request("GET", "/services/collector/health")
    connection.getresponse().read()
    before = threading.active_count()
    emulator.stop()
    deadline = time.monotonic() + 10
    while threading.active_count() >= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() < before
    connection.close()


def test_cli_serves_records_and_stops_on_sigterm(tmp_path: Path) -> None:
    record = tmp_path / "cli.jsonl"
    command = [sys.executable, "-m", "tests.emulators.hec", "--port", "0", "--token", "T", "--ack",
               "--record", str(record)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    try:
        line = process.stdout.readline()
        assert "listening url=http://127.0.0.1:" in line
        url = line.split("url=")[1].split()[0]
        channel = str(uuid.uuid4())
        reply = requests.post(url + EVENT, data=body({"event": "cli"}), headers=headers("T", channel), timeout=10)
        assert reply.json() == {"text": "Success", "code": 0, "ackId": 0}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
    assert json.loads(record.read_text(encoding="utf-8"))["event"] == "cli"
