"""A ConsumerWorker in its own process, so a test can kill it without any shutdown (SIGKILL).

    python -m tests.emulators.sls.sdk_worker --endpoint 127.0.0.1:PORT --access-key-id ID
        --access-key-secret S --project P --logstore L --group G --consumer C --out FILE

HTTP_PROXY must point at the emulator (see testing.sdk_proxy_env). Every processed batch appends its
event_ids to FILE, one per line, flushed before the checkpoint is committed.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulators.sls.sdk_worker")
    for name in ("endpoint", "access-key-id", "access-key-secret", "project", "logstore", "group", "consumer",
                 "out"):
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--heartbeat-interval", type=int, default=1)
    args = parser.parse_args(argv)

    from aliyun.log.consumer import ConsumerProcessorBase, ConsumerWorker, CursorPosition, LogHubConfig

    from .testing import event_ids_of

    out = open(args.out, "a", encoding="utf-8")

    class FileProcessor(ConsumerProcessorBase):
        def process(self, log_groups: object, check_point_tracker: object) -> None:
            ids = event_ids_of(log_groups)
            out.write("".join("%d %s\n" % (self.shard_id, event_id) for event_id in ids))
            out.flush()
            self.save_checkpoint(check_point_tracker, force=True)

    config = LogHubConfig(args.endpoint, args.access_key_id, args.access_key_secret, args.project, args.logstore,
                          args.group, args.consumer, cursor_position=CursorPosition.BEGIN_CURSOR,
                          heartbeat_interval=args.heartbeat_interval, data_fetch_interval=0.2)
    worker = ConsumerWorker(FileProcessor, config)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    worker.start()
    print("worker started", flush=True)
    stopping.wait()
    worker.shutdown()
    worker.join(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
