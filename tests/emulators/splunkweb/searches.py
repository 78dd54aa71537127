"""splunkd's search job API, reduced to what the pages' footer and the dashboard call: every job is done at once,
with canned results, and every search that arrives is recorded."""

from __future__ import annotations

import itertools
import re
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

Rows = List[Dict[str, Any]]
# search text -> rows, or None to let the next rule answer
ResultRule = Callable[[str], Optional[Rows]]


class SearchJobs:
    """Search jobs that finish immediately.

    Arguments:
        rules: Tried in order for each new job's search; the first that returns rows gives the results (else none).
    """

    def __init__(self, rules: Optional[List[ResultRule]] = None) -> None:
        self.rules = list(rules or [])
        self._lock = threading.Lock()
        self._jobs: Dict[str, Dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def searches(self) -> List[str]:
        """Every search dispatched so far, in order."""
        with self._lock:
            return [job["search"] for job in self._jobs.values()]

    def dispatch(self, search: str, params: Dict[str, str]) -> str:
        rows: Rows = []
        for rule in self.rules:
            found = rule(search)
            if found is not None:
                rows = found
                break
        with self._lock:
            sid = f"admin__admin__search__standin_{time.time():.0f}_{next(self._ids)}"
            self._jobs[sid] = {"search": search, "rows": rows, "params": dict(params)}
        return sid

    def job(self, sid: str) -> Optional[Dict[str, Any]]:
        with self._lock:
            return self._jobs.get(sid)

    def status_entry(self, sid: str) -> Dict[str, Any]:
        """A job's entry as ``search/jobs`` lists it (done, not failed)."""
        job = self.job(sid) or {"search": "", "rows": []}
        count = len(job["rows"])
        return {"name": job["search"], "id": f"/services/search/jobs/{sid}", "updated": "", "links": {},
                "author": "admin", "acl": {"app": "search", "owner": "admin", "sharing": "user"},
                "content": {"sid": sid, "isDone": True, "isFailed": False, "isFinalized": False, "isPaused": False,
                            "dispatchState": "DONE", "doneProgress": 1, "resultCount": count, "eventCount": count,
                            "resultPreviewCount": count, "scanCount": count, "isRealTimeSearch": False,
                            "isPreviewEnabled": False, "messages": [], "runDuration": 0.01,
                            "earliestTime": "", "latestTime": "", "request": {"search": job["search"]}}}

    @staticmethod
    def results(rows: Rows, mode: str) -> Dict[str, Any]:
        """``results``/``results_preview`` in ``json`` (rows) or ``json_cols`` (columns) output mode."""
        fields: List[str] = []
        for row in rows:
            fields.extend(key for key in row if key not in fields)
        if mode == "json_cols":
            return {"preview": False, "init_offset": 0, "messages": [], "fields": [{"name": f} for f in fields],
                    "columns": [[row.get(f) for row in rows] for f in fields]}
        return {"preview": False, "init_offset": 0, "messages": [], "fields": [{"name": f} for f in fields],
                "results": rows}


def app_build_rule(app: str, build: str) -> ResultRule:
    """The pages' footer asks ``| rest services/apps/local/<app> ... | fields build``."""
    pattern = re.compile(r"\|\s*rest\s+/?services/apps/local/" + re.escape(app) + r"\b")

    def rule(search: str) -> Optional[Rows]:
        return [{"build": build}] if pattern.search(search) else None

    return rule


def parse_sid(segments: List[str]) -> Tuple[Optional[str], str]:
    """``search/[v2/]jobs/<sid>/<tail>`` -> (sid or None, tail)."""
    rest = segments[1:]
    if rest[:1] == ["v2"]:
        rest = rest[1:]
    rest = rest[1:]  # "jobs"
    if not rest:
        return None, ""
    return rest[0], "/".join(rest[1:])


def _hours(count: int = 24) -> List[str]:
    """ISO times of the last ``count`` whole hours before a fixed day (what Splunk returns for ``_time``)."""
    return [f"2026-12-05T{hour:02d}:00:00.000+00:00" for hour in range(24 - count, 24)]


def _series(values: Dict[str, List[float]]) -> Rows:
    times = _hours(len(next(iter(values.values()))))
    return [dict({"_time": time_}, **{name: series[i] for name, series in values.items()})
            for i, time_ in enumerate(times)]


def _wave(base: float, swing: float, count: int = 24) -> List[float]:
    return [round(base + swing * ((i * 7) % 11) / 10, 1) for i in range(count)]


def sample_dashboard_rules() -> List[ResultRule]:
    """Plausible results for the monitoring dashboard's searches, so its panels draw something (shapes only:
    no search is run). Errors stay empty: a healthy add-on."""
    def rule(search: str) -> Optional[Rows]:
        if "eval StartDate" in search:
            return [{"StartDate": "4 Dec 2026 12:00AM"}]
        if "eval EndDate" in search:
            return [{"EndDate": "5 Dec 2026 12:00AM"}]
        if "log_level" in search or "exc_l" in search:
            return []
        if "action=shard_lag" in search:
            return _series({"prod:0": _wave(0.8, 2.0), "prod:1": _wave(1.1, 1.5)})
        if "action IN (sls_retry" in search:
            return [{"input": "prod", "action": "sls_retry", "code": "ReadQuotaExceed", "count": "3",
                     "last_seen": "12/05/2026 06:41:10"}]
        if "action IN (shard_assigned" in search:
            return [{"_time": "2026-12-05T06:00:04.000+00:00", "host": "hf1", "consumer": "splunk-hf1-prod",
                     "action": "shard_assigned", "shard": str(shard)} for shard in (0, 1)]
        if "license_usage.log" in search and "events_ingested" in search:
            return _series({"Data volume": _wave(4.2e8, 1.5e8), "Number of events": _wave(6.0e5, 2.0e5)})
        if "license_usage.log" in search:
            return _series({"Data volume": _wave(4.2e8, 1.5e8)})
        if "events_ingested" in search:
            return _series({"Number of events": _wave(6.0e5, 2.0e5)})
        if "data.pct_cpu" in search:
            return _series({"CPU (%)": _wave(3.0, 4.0)})
        if "data.pct_memory" in search:
            return _series({"Memory (%)": _wave(0.6, 0.2)})
        return None

    return [rule]
