"""The unit of delivery: the shaped events of one pull from one shard, and the cursor they move to."""

from dataclasses import dataclass, field
from typing import Dict, List, Optional

__all__ = ["ShardBatch"]


@dataclass
class ShardBatch:
    """Events pulled from ``cursor`` of one shard; ``next_cursor`` becomes the checkpoint once they are delivered."""

    shard_id: int
    cursor: str
    next_cursor: str
    events: List[bytes] = field(default_factory=list)
    raw_bytes: int = 0
    newest_time: int = 0
    seq: int = 0
    sourcetypes: Optional[Dict[str, int]] = None  # events per sourcetype when routed; None: all the input's own
    memory: int = 0  # bytes held against the input's memory budget until the batch is done (budget.py)

    @property
    def event_bytes(self) -> int:
        return sum(len(e) for e in self.events)
