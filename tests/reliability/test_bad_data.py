"""Scenario 8: bad data. Non-UTF-8 bytes, control characters, a 6 MB event (over HEC's 5 MB maxEventSize), 1000
fields, empty keys and values, duplicate keys. Consumed twice, in stream mode and over HEC (two consumer groups):
every event is accounted for, delivered intact (invalid UTF-8 shows as U+FFFD, as documented), or, over HEC, in
the dead-letter file with its shard and cursor. None disappears silently."""

from __future__ import annotations

import json
import os
from typing import Dict, List, Tuple, Union

from tests.emulators.sls.protobuf import encode_log, encode_log_group
from tests.integration.harness import PROJECT, LOGSTORE, wait_until

from .support import ReliabilityEnv, ShardLayout, cursor_index

Text = Union[str, bytes]
HUGE = 6 * 1024 * 1024


def bad_events() -> Dict[str, List[Tuple[Text, Text]]]:
    """event_id -> contents in wire order (event_id first)."""
    events: Dict[str, List[Tuple[Text, Text]]] = {
        "bd-nonutf8": [("msg", b"ok \xff\xfe bad \xc3\x28 end"), (b"key\xff", "value"), ("tail", b"\x80")],
        "bd-control": [("msg", "tab\tnl\ncr\r nul\x00 bell\x07 esc\x1b del\x7f ls\u2028 ps\u2029 <xml&> ]]>")],
        "bd-huge": [("blob", "x" * HUGE)],
        "bd-wide": [(f"field_{n:04d}", f"value {n}") for n in range(1000)],
        "bd-empty": [("empty", ""), ("", "value of an empty key"), ("also_empty", "")],
        "bd-dupes": [("dup", "first"), ("dup", "second"), ("other", "x"), ("dup", "third")],
    }
    for n in range(20):
        events[f"bd-plain-{n:02d}"] = [("msg", f"plain event {n}")]
    return {event_id: [("event_id", event_id)] + contents for event_id, contents in events.items()}


def text(value: Text) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def test_bad_data_is_delivered_intact_or_dead_lettered(summary) -> None:
    events = bad_events()
    with ReliabilityEnv() as env:
        env.create_logstore(shards=2)
        for number, (event_id, contents) in enumerate(events.items()):
            group = encode_log_group([encode_log(1_780_000_000 + number, contents, 123)], topic="bad", source="10.0.0.1")
            env.sls.put_log_groups(PROJECT, LOGSTORE, number % 2, [group])
        streamed = env.start_input("bd_stream", consumer_group="g_stream")
        hec = env.start_input("bd_hec", consumer_group="g_hec", delivery="hec", hec_destination="hec1", index="main")
        dead_letter_path = os.path.join(env.checkpoint_dir, "bd_hec.deadletter.jsonl")

        def dead_letters() -> List[dict]:
            if not os.path.exists(dead_letter_path):
                return []
            with open(dead_letter_path, encoding="utf-8") as handle:
                return [json.loads(line) for line in handle]

        def hec_accounted() -> int:
            return len(env.hec.events()) + len(dead_letters())

        wait_until(lambda: len(streamed.events) >= len(events) and hec_accounted() >= len(events)
                   and env.fully_checkpointed(group="g_stream") and env.fully_checkpointed(group="g_hec"),
                   timeout=120, message="both inputs to account for every event")
        assert streamed.terminate(timeout=30) == 0 and hec.terminate(timeout=30) == 0
        assert streamed.protocol_errors == [], streamed.protocol_errors[:3]
        layout = ShardLayout(env).refresh()
        hec_log = env.log_text("bd_hec")
        records = dead_letters()
        hec_events = env.hec.events()

    # Stream: every event intact, keys and values in wire order, duplicates and empty keys kept.
    stream_bodies = {}
    for event in streamed.events:
        pairs = json.loads(event["data"], object_pairs_hook=list)
        stream_bodies[dict(pairs)["event_id"]] = pairs
    for event_id, contents in events.items():
        expected = [(text(key), text(value)) for key, value in contents]
        assert stream_bodies[event_id][:len(expected)] == expected, f"{event_id} changed in the stream"

    # HEC: delivered intact, or (the 6 MB event) dead-lettered with its shard and cursor and logged.
    delivered = {event["event"]["event_id"]: event["event"] for event in hec_events}
    dead = {json.loads(record["event"])["event"]["event_id"]: record for record in records}
    assert set(dead) == {"bd-huge"}, sorted(dead)
    record = dead["bd-huge"]
    shard_id, index = layout.position["bd-huge"]
    assert record["reason"] == "too_large" and record["shard"] == shard_id
    assert cursor_index(record["cursor"]) <= index, "the dead letter's cursor is after the event"
    assert f"action=hec_dead_letter shard={shard_id} cursor={record['cursor']}" in hec_log
    for event_id, contents in events.items():
        if event_id in dead:
            continue
        body = delivered[event_id]
        for key, value in dict((text(k), text(v)) for k, v in contents).items():
            assert body[key] == value, f"{event_id}: {key!r} changed over HEC"

    result = env.compare({f"stream:{i}" for i in events} | {f"hec:{i}" for i in events},
                         [f"stream:{json.loads(e['data'])['event_id']}" for e in streamed.events]
                         + [f"hec:{i}" for i in delivered] + [f"hec:{i}" for i in dead])
    summary(result.row("8 bad data, stream + HEC"))
    assert result.missing == set() and result.duplicates == 0, result
