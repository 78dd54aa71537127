"""A local Alibaba Cloud Log Service (SLS) for tests, demos and benchmarks.

    from tests.emulators.sls import SlsEmulator
    with SlsEmulator(access_keys={"ak-id": "ak-secret"}) as emu:
        emu.create_project("proj")
        emu.create_logstore("proj", "ls", shard_count=4)

See README.md in this folder.
"""

from .faults import Faults
from .server import RequestRecord, SlsEmulator
from .state import SlsError, decode_cursor, encode_cursor

__all__ = ["SlsEmulator", "Faults", "RequestRecord", "SlsError", "encode_cursor", "decode_cursor"]
