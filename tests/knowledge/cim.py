"""CIM checks on one simulated event: which datasets its tags imply, and the field rules of declared datasets.

Dataset choice follows pytest-splunk-addon's datamodel test: a dataset matches when the event has all its tags,
and a matched dataset is dropped when its tags are a subset of another matched dataset's tags, so an event tagged
change+account is ``Change_Account_Management`` only, never ``Change`` as well.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

Fields = Dict[str, List[str]]
RULES_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cim_rules.json")


def dataset_key(model: str) -> str:
    """A sample's model name as PSA keys it: ``Change:Account_Management`` -> ``Change_Account_Management``."""
    return model.strip().replace(" ", "_").replace(":", "_")


@dataclass
class DatasetRules:
    required: List[str] = field(default_factory=list)
    allowed: Dict[str, List[str]] = field(default_factory=dict)
    required_when: List[Dict] = field(default_factory=list)
    forbidden_unless_tag: List[Dict] = field(default_factory=list)
    numeric: List[str] = field(default_factory=list)
    sum: Dict[str, List[str]] = field(default_factory=dict)
    length_of: Dict[str, str] = field(default_factory=dict)


class CimRules:
    def __init__(self, path: str = RULES_PATH):
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        self.tags: Dict[str, List[str]] = {name: spec["tags"] for name, spec in data["datasets"].items()}
        self.parents: Dict[str, Optional[str]] = {name: spec.get("parent") for name, spec in data["datasets"].items()}
        self.rules: Dict[str, DatasetRules] = {name: DatasetRules(**spec) for name, spec in data["rules"].items()}

    def known(self, key: str) -> bool:
        return key in self.tags

    def datasets_for_tags(self, tags: Iterable[str]) -> List[str]:
        present = set(tags)
        matched = {name: set(needed) for name, needed in self.tags.items() if set(needed) <= present}
        return sorted(name for name, needed in matched.items()
                      if not any(needed <= other and name != other_name for other_name, other in matched.items()))

    def lineage(self, key: str) -> List[str]:
        chain: List[str] = []
        current: Optional[str] = key
        while current:
            chain.insert(0, current)
            current = self.parents.get(current)
        return chain

    def violations(self, key: str, fields: Fields, exempt: Iterable[str] = ()) -> List[Violation]:
        """What the event breaks of ``key``'s rules and its parents'; fields in ``exempt`` are skipped."""
        skip = set(exempt)
        problems: List[Violation] = []
        tags = set(fields.get("tag", []))
        for name in self.lineage(key):
            rules = self.rules.get(name)
            if rules is None:
                continue
            found: List[Tuple[str, str, bool]] = []   # (field, message, missing)

            def add(field_name: str, message: str, missing: bool = False) -> None:
                found.append((field_name, message, missing))

            required = list(rules.required)
            for condition in rules.required_when:
                if condition["value"] in fields.get(condition["field"], []):
                    required += condition["then"]
            for needed in required:
                if not _has_value(fields, needed):
                    add(needed, f"required field {needed} is missing", missing=True)
            for allowed_field, values in rules.allowed.items():
                for value in fields.get(allowed_field, []):
                    if value not in values:
                        add(allowed_field, f"{allowed_field}={value!r} is not one of {'|'.join(values)}")
            for rule in rules.forbidden_unless_tag:
                if rule["value"] in fields.get(rule["field"], []) and rule["tag"] not in tags:
                    add(rule["field"], f"{rule['field']}={rule['value']} without tag {rule['tag']}: {rule['why']}")
            for numeric in rules.numeric:
                if any(_number(value) is None for value in fields.get(numeric, [])):
                    add(numeric, f"{numeric}={fields[numeric]} is not numeric")
            for total, parts in rules.sum.items():
                if _sum_differs(fields, total, parts):
                    add(total, f"{total}={fields[total][0]} is not {' + '.join(parts)}")
            for length_field, text_field in rules.length_of.items():
                if length_field in fields and text_field in fields and \
                        fields[length_field] != [str(len(fields[text_field][0]))]:
                    add(length_field, f"{length_field}={fields[length_field]} but len({text_field})="
                                      f"{len(fields[text_field][0])}")
            problems += [Violation(name, field_name, missing, message)
                         for field_name, message, missing in found if field_name not in skip]
        return problems


@dataclass(frozen=True)
class Violation:
    dataset: str
    field: str
    missing: bool      # a required field is absent (otherwise its value breaks a rule)
    message: str

    def __str__(self) -> str:
        return f"{self.dataset}: {self.message}"


def _has_value(fields: Fields, name: str) -> bool:
    return any(value != "" for value in fields.get(name, []))


def _number(text: str) -> Optional[float]:
    return float(text) if re.fullmatch(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*", text) else None


def _sum_differs(fields: Fields, total: str, parts: List[str]) -> bool:
    if total not in fields or any(part not in fields for part in parts):
        return False
    numbers = [_number(fields[name][0]) for name in [total] + parts]
    if any(number is None for number in numbers):
        return False
    return abs(numbers[0] - sum(numbers[1:])) > 1e-9  # type: ignore[arg-type, operator]
