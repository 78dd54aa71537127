"""``python -m demo`` (what ``python3 build.py demo`` runs), tiny, end to end against the built add-on (issue 4)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .harness import built_app_dir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROW = re.compile(r"^\s+(stream|hec)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+[\d.]+\s+[\d.]+\s+(.+)$", re.M)


def test_a_tiny_demo_delivers_everything_in_both_modes(tmp_path: Path) -> None:
    env = dict(os.environ, TA_ALIYUN_SLS_APP=built_app_dir(), PYTHONDONTWRITEBYTECODE="1")
    completed = subprocess.run([sys.executable, "-m", "demo", "--events", "400", "--shards", "2",
                                "--timeout", "90", "--workdir", str(tmp_path)],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    output = completed.stdout
    assert completed.returncode == 0, output[-3000:] + completed.stderr[-3000:]
    rows = {mode: numbers for mode, *numbers in ROW.findall(output)}
    assert set(rows) == {"stream", "hec"}, output[-3000:]
    for mode, (put, delivered, missing, duplicates, checkpoints) in rows.items():
        assert (put, delivered, missing, duplicates) == ("400", "400", "0", "0"), (mode, output[-3000:])
        assert checkpoints.strip() == "at the end", (mode, checkpoints)
    assert "Every event arrived" in output
    # The default data set holds every routed source, and the input runs with sourcetype auto.
    for mode in ("stream", "hec"):
        line = re.search(r"^\s+%s\s+by sourcetype: (.+)$" % mode, output, re.M)
        assert line is not None, output[-3000:]
        counts = dict(re.findall(r"(aliyun:[a-z:]+) ([\d,]+)", line.group(1)))
        assert set(counts) == {"aliyun:actiontrail", "aliyun:waf", "aliyun:oss:access", "aliyun:slb:access",
                               "aliyun:sas:alert", "aliyun:cloudfirewall", "aliyun:sls"}, line.group(0)
        assert sum(int(count.replace(",", "")) for count in counts.values()) == 400
    for name in ("demo_stream", "demo_hec"):
        log = tmp_path / "splunk-home" / "var" / "log" / "splunk" / f"ta-aliyun-sls_{name}.log"
        assert str(log) in output and log.is_file(), log
