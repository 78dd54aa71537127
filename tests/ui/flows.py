"""Multi-step things a user does on the Configuration page, shared by the page tests."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Set

from .pages import UccPage


def built_global_config(app_dir: str) -> Dict[str, Any]:
    """The globalConfig.json the built pages load (UCC's copy in appserver/static/js/build)."""
    with open(os.path.join(app_dir, "appserver", "static", "js", "build", "globalConfig.json"), encoding="utf-8") as f:
        return json.load(f)


def tab_config(global_config: Dict[str, Any], name: str) -> Dict[str, Any]:
    return next(tab for tab in global_config["pages"]["configuration"]["tabs"] if tab["name"] == name)


def select_values(entity: Dict[str, Any]) -> List[str]:
    return [option["value"] for option in entity.get("options", {}).get("autoCompleteFields", [])]


def expected_visible(entities: List[Dict[str, Any]], field: str, value: str, mode: str = "create") -> Set[str]:
    """The fields UCC shows when ``field`` is ``value`` and every other field has its default: each field's
    ``options.display`` (default shown), then every ``modifyFieldsOnValue`` rule that matches its field's value."""
    shown = {entity["field"]: entity.get("options", {}).get("display", True) for entity in entities}
    for entity in entities:
        current = value if entity["field"] == field else str(entity.get("defaultValue", ""))
        rules = entity.get("modifyFieldsOnValue", [])
        matched = [rule for rule in rules if str(rule.get("fieldValue")) == current]
        matched = matched or [rule for rule in rules if rule.get("fieldValue") == "[[any_other_value]]"]
        for rule in matched:
            if rule.get("mode", mode) != mode:
                continue
            for change in rule.get("fieldsToModify", []):
                if "display" in change:
                    shown[change["fieldId"]] = bool(change["display"])
    return {name for name, visible in shown.items() if visible}


def add_account(page: UccPage, name: str, key_id: str, secret: str) -> None:
    page.tab("Accounts")
    dialog = page.add()
    dialog.fill({"name": name, "access_key_id": key_id, "access_key_secret": secret})
    dialog.submit()
    dialog.wait_closed()
    page.wait_row(name)


def add_hec_destination(page: UccPage, name: str, url: str, token: str, use_ack: bool) -> None:
    page.tab("HEC destinations")
    dialog = page.add()
    dialog.fill({"name": name, "url": url, "token": token, "use_ack": use_ack, "verify_tls": False})
    dialog.submit()
    dialog.wait_closed()
    page.wait_row(name)
