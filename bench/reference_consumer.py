"""The reference contender: the official SDK's ConsumerWorker forwarding to HEC one event per request.

This is the program the seed article describes (and the SDK's consumer-group-to-Splunk example and the official
add-on's pure-Python path do): a ``ConsumerProcessorBase`` whose ``process`` flattens the log groups with
``PullLogResponse.loggroups_to_flattern_list``, ``json.dumps`` each log into a HEC envelope and POSTs it with
``requests``, one event per request, then saves the checkpoint the SDK's way (``save_checkpoint``, committed
at the SDK's interval). Unlike the article it retries a failed POST instead of dropping the event, so the
benchmark counts every event (no POST fails against the benchmark's HEC).

    python -m bench.reference_consumer --endpoint 127.0.0.1:PORT --access-key-id ID --access-key-secret S
        --project P --logstore L --group G --consumer C --hec-url http://127.0.0.1:PORT --hec-token T

HTTP_PROXY must point at the SLS emulator (the SDK reaches a host:port endpoint only through a proxy, see
tests/emulators/sls/testing.py). Runs until SIGTERM, then shuts the worker down.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import Dict, List, Optional


def build_processor_class() -> type:
    """The SDK processor class (the SDK is imported here so ``--help`` works without it)."""
    import requests
    from aliyun.log.consumer import ConsumerProcessorBase
    from aliyun.log.pulllog_response import PullLogResponse

    class HecForwarder(ConsumerProcessorBase):
        """Flatten, json.dumps and POST each log on its own."""

        def __init__(self, hec_url: str, token: str, metadata: Dict[str, str], stop: threading.Event) -> None:
            super().__init__()
            self.url = hec_url.rstrip("/") + "/services/collector/event"
            self.metadata = metadata
            self.stop = stop
            self.session = requests.Session()
            # HTTP_PROXY routes the SDK to the SLS emulator; HEC is reached directly.
            self.session.trust_env = False
            self.session.headers["Authorization"] = "Splunk " + token

        def process(self, log_groups: object, check_point_tracker: object) -> None:
            logs = PullLogResponse.loggroups_to_flattern_list(log_groups, time_as_str=True, decode_bytes=True)
            for log in logs:
                event = dict(self.metadata)
                event["time"] = log.pop("__time__")
                event["host"] = log.get("__source__", "")
                event["event"] = log
                if not self.post(json.dumps(event)):
                    return  # stopping: leave the checkpoint before the events not sent
            self.save_checkpoint(check_point_tracker)

        def post(self, body: str) -> bool:
            """POST one envelope until HEC takes it; False when stopped first."""
            while not self.stop.is_set():
                try:
                    self.session.post(self.url, data=body, timeout=120).raise_for_status()
                    return True
                except requests.RequestException:
                    time.sleep(0.1)
            return False

    return HecForwarder


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reference_consumer", description=__doc__.splitlines()[0])
    for name in ("endpoint", "access-key-id", "access-key-secret", "project", "logstore", "group", "consumer",
                 "hec-url", "hec-token"):
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--index", default="main")
    parser.add_argument("--sourcetype", default="aliyun:sls")
    parser.add_argument("--heartbeat-interval", type=int, default=20, help="the article's value")
    parser.add_argument("--data-fetch-interval", type=float, default=0.1, help="the article's value")
    args = parser.parse_args(argv)

    from aliyun.log.consumer import ConsumerWorker, CursorPosition, LogHubConfig

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    metadata = {"index": args.index, "sourcetype": args.sourcetype,
                "source": "sls:%s:%s" % (args.project, args.logstore)}
    config = LogHubConfig(args.endpoint, args.access_key_id, args.access_key_secret, args.project, args.logstore,
                          args.group, args.consumer, cursor_position=CursorPosition.BEGIN_CURSOR,
                          heartbeat_interval=args.heartbeat_interval, data_fetch_interval=args.data_fetch_interval)
    worker = ConsumerWorker(build_processor_class(), config, args=(args.hec_url, args.hec_token, metadata, stop))
    worker.start()
    stop.wait()
    worker.shutdown()
    worker.join(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
