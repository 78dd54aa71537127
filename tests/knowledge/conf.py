"""Read .conf files the way splunkd does, but flag what splunkd would silently merge.

Splunk's rules (admin manual, "About configuration files"): ``[stanza]`` headers; ``key = value`` lines with
whitespace around both trimmed; a line whose first non-blank character is ``#`` is a comment (a ``#`` later in a
line is part of the value); a line ending in a backslash continues on the next line. Settings before the first
stanza belong to ``[default]``. A duplicate key or stanza is legal for splunkd (the last one wins), which hides
mistakes, so every duplicate is recorded as an issue here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

DEFAULT_STANZA = "default"


@dataclass(frozen=True)
class ConfIssue:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{os.path.basename(self.path)}:{self.line}: {self.message}"


@dataclass
class ConfFile:
    path: str
    stanzas: Dict[str, Dict[str, str]] = field(default_factory=dict)
    lines: Dict[Tuple[str, str], int] = field(default_factory=dict)   # (stanza, key) -> line number
    stanza_lines: Dict[str, int] = field(default_factory=dict)
    issues: List[ConfIssue] = field(default_factory=list)

    def get(self, stanza: str, key: str, default: str = "") -> str:
        return self.stanzas.get(stanza, {}).get(key, default)

    def line_of(self, stanza: str, key: str = "") -> int:
        return self.lines.get((stanza, key), self.stanza_lines.get(stanza, 0))


def parse_conf_text(text: str, path: str = "<text>") -> ConfFile:
    conf = ConfFile(path)
    stanza = DEFAULT_STANZA
    physical = text.splitlines()
    index = 0
    while index < len(physical):
        number = index + 1
        line = physical[index]
        index += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        # A trailing backslash joins the next physical line; the newline stays part of the value.
        while line.endswith("\\") and index < len(physical):
            line = line[:-1] + "\n" + physical[index]
            index += 1
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            stanza = stripped[1:-1]
            if stanza in conf.stanza_lines:
                conf.issues.append(ConfIssue(path, number, f"duplicate stanza [{stanza}] (first at line "
                                                           f"{conf.stanza_lines[stanza]}); splunkd merges them"))
            else:
                conf.stanza_lines[stanza] = number
            conf.stanzas.setdefault(stanza, {})
            continue
        if "=" not in stripped:
            conf.issues.append(ConfIssue(path, number, f"line is neither a stanza, a comment nor key = value: "
                                                       f"{stripped[:60]!r}"))
            continue
        key, value = stripped.split("=", 1)
        key, value = key.strip(), value.strip()
        values = conf.stanzas.setdefault(stanza, {})
        if stanza == DEFAULT_STANZA:
            conf.stanza_lines.setdefault(stanza, number)
        if key in values:
            conf.issues.append(ConfIssue(path, number, f"duplicate key {key!r} in [{stanza}] (first at line "
                                                       f"{conf.lines[(stanza, key)]}); the last one wins"))
        else:
            conf.lines[(stanza, key)] = number
        values[key] = value
    return conf


def parse_conf(path: str) -> ConfFile:
    with open(path, encoding="utf-8") as handle:
        return parse_conf_text(handle.read(), path)


def read_app_conf(app_dir: str, name: str) -> ConfFile:
    """``<app>/default/<name>.conf``; an absent file reads as empty (only default/ is layered here)."""
    path = os.path.join(app_dir, "default", name + ".conf")
    if not os.path.exists(path):
        return ConfFile(path)
    return parse_conf(path)
