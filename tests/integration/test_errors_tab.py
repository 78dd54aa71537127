"""The labels error_labels.py writes are the ones the built dashboard's Errors tab filters by (UCC generates that tab;
a UCC upgrade that renames them must fail here, not leave the tab's filter empty)."""

from __future__ import annotations

import json
import os

from sls_forwarder.error_labels import AUTHENTICATION, CONFIGURATION, CONNECTION, PERMISSION, SERVER

from .harness import built_app_dir


def test_the_errors_tab_filters_by_the_labels_the_add_on_writes() -> None:
    path = os.path.join(built_app_dir(), "appserver", "static", "js", "build", "custom", "errors_tab_definition.json")
    with open(path, encoding="utf-8") as handle:
        inputs = json.load(handle)["inputs"]
    items = inputs["errors_type_input"]["options"]["items"]
    filtered = {item["label"] for item in items if item["value"] != "*"}
    assert filtered == {PERMISSION, AUTHENTICATION, CONNECTION, CONFIGURATION, SERVER}
    # The tab's list search quotes each label as the value of exc_l.
    assert all(item["value"] == f'"{item["label"]}"' for item in items if item["value"] != "*")
