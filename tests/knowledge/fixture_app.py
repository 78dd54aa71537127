"""Write small throwaway apps for the simulator's own tests."""

from __future__ import annotations

import os
import textwrap
from typing import Dict, Optional


def write_app(root: str, *, props: str = "", transforms: str = "", eventtypes: str = "", tags: str = "",
              limits: str = "", lookups: Optional[Dict[str, str]] = None) -> str:
    """An app folder with default/*.conf (dedented text) and lookups/*.csv; returns its path."""
    default = os.path.join(root, "default")
    os.makedirs(default, exist_ok=True)
    os.makedirs(os.path.join(root, "lookups"), exist_ok=True)
    for name, text in (("props", props), ("transforms", transforms), ("eventtypes", eventtypes), ("tags", tags),
                       ("limits", limits)):
        if text:
            with open(os.path.join(default, name + ".conf"), "w", encoding="utf-8") as handle:
                handle.write(textwrap.dedent(text).lstrip("\n"))
    for file_name, text in (lookups or {}).items():
        with open(os.path.join(root, "lookups", file_name), "w", encoding="utf-8") as handle:
            handle.write(textwrap.dedent(text).lstrip("\n"))
    return root
