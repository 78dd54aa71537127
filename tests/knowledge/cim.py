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
from typing import Dict, Iterable, List, Optional

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

    def violations(self, key: str, fields: Fields, exempt: Iterable[str] = ()) -> List[str]:
        """What the event breaks of ``key``'s rules and its parents'; fields in ``exempt`` are skipped."""
        skip = set(exempt)
        problems: List[str] = []
        tags = set(fields.get("tag", []))
        for name in self.lineage(key):
            rules = self.rules.get(name)
            if rules is None:
                continue
            required = list(rules.required)
            for condition in rules.required_when:
                if condition["value"] in fields.get(condition["field"], []):
                    required += condition["then"]
            for needed in required:
                if needed not in skip and not _has_value(fields, needed):
                    problems.append(f"{name}: required field {needed} is missing")
            for name_allowed, values in rules.allowed.items():
                if name_allowed in skip:
                    continue
                for value in fields.get(name_allowed, []):
                    if value not in values:
                        problems.append(f"{name}: {name_allowed}={value!r} is not one of {'|'.join(values)}")
            for rule in rules.forbidden_unless_tag:
                if rule["field"] not in skip and rule["value"] in fields.get(rule["field"], []) and \
                        rule["tag"] not in tags:
                    problems.append(f"{name}: {rule['field']}={rule['value']} without tag {rule['tag']}: {rule['why']}")
            for numeric in rules.numeric:
                if numeric not in skip and any(_number(v) is None for v in fields.get(numeric, [])):
                    problems.append(f"{name}: {numeric}={fields[numeric]} is not numeric")
            for total, parts in rules.sum.items():
                problems += _sum_problem(name, fields, total, parts, skip)
            for length_field, text_field in rules.length_of.items():
                if length_field in skip or length_field not in fields or text_field not in fields:
                    continue
                expected = str(len(fields[text_field][0]))
                if fields[length_field] != [expected]:
                    problems.append(f"{name}: {length_field}={fields[length_field]} but len({text_field})={expected}")
        return problems


def _has_value(fields: Fields, name: str) -> bool:
    return any(value != "" for value in fields.get(name, []))


def _number(text: str) -> Optional[float]:
    return float(text) if re.fullmatch(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*", text) else None


def _sum_problem(dataset: str, fields: Fields, total: str, parts: List[str], skip: set) -> List[str]:
    if total in skip or total not in fields or any(part not in fields for part in parts):
        return []
    numbers = [_number(fields[name][0]) for name in [total] + parts]
    if any(number is None for number in numbers):
        return []
    if abs(numbers[0] - sum(numbers[1:])) > 1e-9:  # type: ignore[arg-type, operator]
        return [f"{dataset}: {total}={fields[total][0]} is not {' + '.join(parts)}"]
    return []
