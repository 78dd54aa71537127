"""What the built add-on delivered with sourcetype auto, as (sourcetype, raw) pairs, and as sample files.

The pairs are what Splunk would index: the sourcetype and ``_raw``. For the stream that is the ``<data>`` text as
it arrived; for HEC the envelope's ``event`` object, written back as compact JSON in the order it arrived
(``json.loads`` keeps key order). ``write_samples`` writes one file per sourcetype, one event per line, for the
knowledge-object simulator (``tests/knowledge``) or any tool that reads raw events.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, List, Tuple

from tests.splunk_runner import RunningInput

Sample = Tuple[str, str]


def stream_samples(running: RunningInput) -> List[Sample]:
    """(sourcetype, raw) of every event the input wrote to its stream, in order."""
    return [(event["sourcetype"], event["data"]) for event in running.events]


def hec_samples(events: Iterable[Dict[str, Any]]) -> List[Sample]:
    """(sourcetype, raw) of HEC envelopes as the HEC emulator recorded them (``HecEmulator.events()``)."""
    return [(event["sourcetype"], json.dumps(event["event"], ensure_ascii=False, separators=(",", ":")))
            for event in events]


def sample_file_name(sourcetype: str) -> str:
    """``aliyun:oss:access`` -> ``aliyun_oss_access.log``."""
    return sourcetype.replace(":", "_") + ".log"


def write_samples(samples: Iterable[Sample], folder: str) -> Dict[str, str]:
    """Write the events of each sourcetype to ``<folder>/<sourcetype with _ for :>.log``, one raw event per line.

    Returns:
        {sourcetype: path}.
    """
    by_sourcetype: Dict[str, List[str]] = {}
    for sourcetype, raw in samples:
        if "\n" in raw or "\r" in raw:
            raise ValueError("a %s event spans lines; JSON bodies never should" % sourcetype)
        by_sourcetype.setdefault(sourcetype, []).append(raw)
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for sourcetype, lines in by_sourcetype.items():
        path = os.path.join(folder, sample_file_name(sourcetype))
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write("\n".join(lines) + "\n")
        paths[sourcetype] = path
    return paths
