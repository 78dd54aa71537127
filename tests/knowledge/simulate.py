"""Run requirement samples through an app's knowledge objects offline and judge them as pytest-splunk-addon would.

    python3 -m tests.knowledge.simulate --app <built app dir> --samples <dir> [--verbose]

One line per event (verdict, sample file and event, sourcetype, models found, what differed), then
``N passed, M failed`` alone on the last line; the exit status is 1 when any event fails or no event was found.

Per event: every ``<cim_fields>`` (and ``<other_mappings>``) value must equal the extracted single value; the
event's tags must imply exactly the declared ``<models>`` (most specific dataset only); the CIM rules of the
declared models must hold (required fields, allowed values); no field that props defines (FIELDALIAS source or
alias, EVAL target, LOOKUP input or output) may be ``-`` or empty, which PSA's field tests reject; fields listed in ``<exceptions>`` are left out of
the value comparison and the rules, as PSA leaves them out of its requirement test. Each
event runs with empty JSON strings kept and dropped and JSON nulls kept (as "null") and dropped, because Splunk's
choices there are not documented; an event whose outcome differs between them fails as fragile.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from .cim import CimRules, dataset_key
from .knowledge import App, KnowledgeError, SearchResult
from .samples import SampleEvent, read_samples


@dataclass
class Verdict:
    event: SampleEvent
    models_found: List[str] = field(default_factory=list)
    differences: List[str] = field(default_factory=list)
    result: Optional[SearchResult] = None

    @property
    def passed(self) -> bool:
        return not self.differences

    def line(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        text = (f"{status} {self.event.label} [{self.event.sourcetype or '?'}] "
                f"models={','.join(self.models_found) or '-'}")
        if self.differences:
            text += " :: " + "; ".join(self.differences)
        return text


# (keep "" values, keep null as "null"): how Splunk extracts these is undocumented, so every combination runs and
# the first one is reported.
UNDOCUMENTED_CHOICES = ((True, True), (False, True), (True, False), (False, False))
NEGATIVE_VALUES = ("-", "")  # pytest-splunk-addon's default negative values for props fields


def _outcome(event: SampleEvent, result: SearchResult, rules: CimRules,
             props_fields: Sequence[str]) -> Tuple[List[str], List[str]]:
    """(models found, differences) for one simulated result."""
    differences: List[str] = []
    for name in props_fields:
        bad = [value for value in result.fields.get(name, []) if value in NEGATIVE_VALUES]
        if bad:
            differences.append(f"props field {name}={bad[0]!r}: PSA's no-dash-not-empty field test fails")
    expected_fields: Dict[str, str] = dict(event.cim_fields)
    expected_fields.update(event.other_mappings)
    for name, expected in expected_fields.items():
        if name in event.exceptions:  # PSA leaves exception fields out of the value comparison
            continue
        actual = result.fields.get(name)
        if actual is None:
            differences.append(f"{name}: expected {expected!r}, not extracted")
        elif actual != [expected]:
            shown = actual[0] if len(actual) == 1 else actual
            differences.append(f"{name}: expected {expected!r}, got {shown!r}")
    declared = sorted(dataset_key(model) for model in event.models)
    for key in declared:
        if not rules.known(key):
            differences.append(f"model {key} is not a dataset the CIM rules know")
    found = rules.datasets_for_tags(result.tags)
    if found != declared:
        differences.append(f"models: declared {','.join(declared) or '-'}, tags "
                           f"{','.join(result.tags) or '-'} give {','.join(found) or '-'}")
    for key in declared:
        for violation in rules.violations(key, result.fields, exempt=event.exceptions):
            note = (" (listed in <missing_recommended_fields>, but the model requires it)"
                    if violation.missing and violation.field in event.missing_recommended else "")
            differences.append(f"{violation}{note}")
    return found, differences


def judge(app: App, rules: CimRules, event: SampleEvent) -> Verdict:
    verdict = Verdict(event, differences=list(event.problems))
    if not event.raw or not event.sourcetype:
        if not verdict.differences:
            verdict.differences.append("no raw event or sourcetype to simulate")
        return verdict
    outcomes = []
    for keep_empty, keep_null in UNDOCUMENTED_CHOICES:
        try:
            result = app.search(event.raw, event.sourcetype, source=event.source, host=event.host,
                                keep_empty_json=keep_empty, keep_null_json=keep_null)
            props_fields = sorted({name for names in app.props_fields(event.sourcetype).values() for name in names})
        except KnowledgeError as err:
            verdict.differences.append(f"cannot simulate: {err}")
            return verdict
        outcomes.append((result, _outcome(event, result, rules, props_fields)))
    result, (found, differences) = outcomes[0]
    verdict.result = result
    verdict.models_found = found
    verdict.differences += differences
    for (keep_empty, keep_null), (_, other) in zip(UNDOCUMENTED_CHOICES[1:], outcomes[1:]):
        if other != (found, differences):
            verdict.differences.append(
                f"fragile: the outcome changes when Splunk {_describe(keep_empty, keep_null)} "
                f"(then models={','.join(other[0]) or '-'}, differences={other[1] or 'none'})")
            break
    return verdict


def _describe(keep_empty: bool, keep_null: bool) -> str:
    dropped = [what for what, kept in (("empty JSON values", keep_empty), ("JSON nulls", keep_null)) if not kept]
    return "drops " + " and ".join(dropped)


def run(app_dir: str, samples_dir: str, rules_path: Optional[str] = None,
        json_cutoff: Optional[int] = None) -> List[Verdict]:
    app = App(app_dir, json_cutoff)
    rules = CimRules(rules_path) if rules_path else CimRules()
    return [judge(app, rules, event) for event in read_samples(samples_dir)]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.knowledge.simulate", description=__doc__.split("\n")[0])
    parser.add_argument("--app", required=True, help="the built app folder (holds default/ and lookups/)")
    parser.add_argument("--samples", required=True, help="folder of pytest-splunk-addon XML samples")
    parser.add_argument("--rules", help="CIM rules JSON (default: tests/knowledge/cim_rules.json)")
    parser.add_argument("--json-cutoff", type=int, help="characters of an event that JSON extraction reads "
                        "(default: the app's limits.conf [spath] extraction_cutoff, else 5000; 0 = all)")
    parser.add_argument("--verbose", action="store_true", help="print the fields, eventtypes and tags per event")
    args = parser.parse_args(argv)
    for label, path in (("--app", os.path.join(args.app, "default")), ("--samples", args.samples)):
        if not os.path.isdir(path):
            print(f"error: {label}: {path} is not a folder", file=sys.stderr)
            return 2
    verdicts = run(args.app, args.samples, args.rules, args.json_cutoff)
    for verdict in verdicts:
        print(verdict.line())
        if args.verbose and verdict.result is not None:
            for name in sorted(verdict.result.fields):
                if name != "_raw":
                    print(f"    {name} = {verdict.result.fields[name]}")
    passed = sum(1 for verdict in verdicts if verdict.passed)
    failed = len(verdicts) - passed
    if not verdicts:
        print(f"no sample events found in {args.samples}", file=sys.stderr)
    print(f"{passed} passed, {failed} failed")
    return 0 if verdicts and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
