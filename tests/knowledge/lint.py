"""Static checks of an app's knowledge objects that Splunk itself would accept silently.

    python3 -m tests.knowledge.lint --app <built app dir>

- no duplicate keys or stanzas in props, transforms, eventtypes, tags (splunkd merges them, last one wins);
- every sourcetype stanza sets TRUNCATE, and none sets INDEXED_EXTRACTIONS together with a KV_MODE other than
  none (every field would be extracted twice);
- every FIELDALIAS parses, no alias is written by two aliases, and no alias reads another alias (aliases do not
  chain); every EVAL parses and calls only functions the simulator supports;
- every LOOKUP- names a transforms stanza whose CSV is in lookups/ and has the named input and output columns;
- every eventtype search parses and pins the events to one of the app's sourcetypes; every tags.conf
  ``eventtype=`` stanza names an existing, enabled eventtype; tag values are enabled or disabled;
- host::/source:: stanzas carry no search-time settings (the simulator applies sourcetype stanzas only).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Optional, Sequence

from .conf import ConfIssue
from .evalexpr import EvalError, parse_eval
from .knowledge import App, KnowledgeError, parse_field_aliases, search_time_class
from .lookups import LookupDefinitionError, load_lookup_table, parse_automatic_lookup
from .spl_search import SearchError, parse_search, patterns_cover, required_sourcetype_patterns

NON_SOURCETYPE_PREFIXES = ("source::", "host::", "rule::", "delayedrule::")


def sourcetype_stanzas(app: App) -> List[str]:
    return [name for name in app.props.stanzas
            if name != "default" and not name.startswith(NON_SOURCETYPE_PREFIXES)]


def lint_app(app_dir: str) -> List[str]:
    app = App(app_dir)
    findings: List[str] = [str(issue) for conf in app.confs() for issue in conf.issues]
    sourcetypes = sourcetype_stanzas(app)

    def at(stanza: str, key: str, message: str) -> None:
        findings.append(str(ConfIssue(app.props.path, app.props.line_of(stanza, key), message)))

    for stanza, settings in app.props.stanzas.items():
        search_keys = [key for key in settings if search_time_class(key) or key.upper() == "KV_MODE"]
        if stanza.startswith(NON_SOURCETYPE_PREFIXES) and search_keys:
            at(stanza, search_keys[0], f"[{stanza}] sets search-time {', '.join(search_keys)}; "
                                       f"only sourcetype stanzas are simulated")
    for stanza in sourcetypes:
        settings = app.props.stanzas[stanza]
        if "TRUNCATE" not in settings:
            at(stanza, "", f"[{stanza}] does not set TRUNCATE (default 10000 bytes cuts JSON into nothing)")
        kv_mode = settings.get("KV_MODE", "auto").strip().lower()
        if settings.get("INDEXED_EXTRACTIONS") and kv_mode != "none":
            at(stanza, "INDEXED_EXTRACTIONS", f"[{stanza}] sets INDEXED_EXTRACTIONS with KV_MODE={kv_mode}: "
                                              f"fields are extracted twice")
        findings += _lint_props_classes(app, stanza, settings)
        try:
            app.knowledge_for(stanza)
        except KnowledgeError as err:
            at(stanza, "", f"the simulator cannot load [{stanza}]: {err}")
    findings += _lint_eventtypes(app, sourcetypes)
    findings += _lint_tags(app)
    return findings


def _lint_props_classes(app: App, stanza: str, settings: Dict[str, str]) -> List[str]:
    findings: List[str] = []
    alias_targets: Dict[str, str] = {}
    alias_sources: Dict[str, str] = {}

    def at(key: str, message: str) -> None:
        findings.append(str(ConfIssue(app.props.path, app.props.line_of(stanza, key), f"[{stanza}] {key}: {message}")))

    for key, value in settings.items():
        kind = search_time_class(key)
        if kind is None:
            continue
        prefix, class_name = kind
        if prefix == "FIELDALIAS-":
            try:
                for alias in parse_field_aliases(class_name, value):
                    if alias.alias in alias_targets:
                        at(key, f"alias {alias.alias} is also written by {alias_targets[alias.alias]}")
                    alias_targets[alias.alias] = key
                    alias_sources[alias.source] = key
            except KnowledgeError as err:
                at(key, str(err))
        elif prefix == "EVAL-":
            try:
                parse_eval(value)  # an unsupported function is a parse error
            except EvalError as err:
                at(key, str(err))
        elif prefix == "LOOKUP-":
            findings += [f"{ConfIssue(app.props.path, app.props.line_of(stanza, key), '')}[{stanza}] {key}: {problem}"
                         for problem in _lookup_problems(app, class_name, value)]
    for source, key in alias_sources.items():
        if source in alias_targets:
            at(key, f"reads {source}, which {alias_targets[source]} writes: aliases do not chain")
    return findings


def _lookup_problems(app: App, class_name: str, value: str) -> List[str]:
    try:
        lookup = parse_automatic_lookup(class_name, value)
        table = load_lookup_table(app.transforms, lookup.table_name, app.lookups_dir)
    except LookupDefinitionError as err:
        return [str(err)]
    problems = []
    for column, _ in lookup.inputs + lookup.outputs:
        if column not in table.columns:
            problems.append(f"{os.path.basename(table.path)} has no column {column!r} (columns: "
                            f"{', '.join(table.columns)})")
    for column in table.wildcard_fields + table.cidr_fields:
        if column not in table.columns:
            problems.append(f"[{table.name}] match_type names {column!r}, not a column of "
                            f"{os.path.basename(table.path)}")
    return problems


def _lint_eventtypes(app: App, sourcetypes: List[str]) -> List[str]:
    findings: List[str] = []
    conf = app.eventtypes_conf
    for name, settings in conf.stanzas.items():
        if name == "default":
            continue
        where = ConfIssue(conf.path, conf.line_of(name, "search"), "")
        if "tags" in settings:
            findings.append(f"{where}eventtype {name} sets tags=, which is deprecated; use tags.conf")
        try:
            matcher = parse_search(settings.get("search", ""))
        except SearchError as err:
            findings.append(f"{where}eventtype {name}: {err}")
            continue
        patterns: Optional[List[str]] = required_sourcetype_patterns(matcher)
        if not patterns:
            findings.append(f"{where}eventtype {name} does not restrict sourcetype= to the app's sourcetypes")
        elif not all(any(patterns_cover([pattern], st) for st in sourcetypes) for pattern in patterns):
            findings.append(f"{where}eventtype {name} names sourcetype {', '.join(patterns)}, not all of which "
                            f"are the app's ({', '.join(sourcetypes)})")
    return findings


def _lint_tags(app: App) -> List[str]:
    findings: List[str] = []
    conf = app.tags_conf
    enabled_eventtypes = {name for name, settings in app.eventtypes_conf.stanzas.items()
                          if settings.get("disabled", "0").strip().lower() not in ("1", "true")}
    for stanza, settings in conf.stanzas.items():
        where = ConfIssue(conf.path, conf.line_of(stanza), "")
        if stanza == "default":
            continue
        if "=" not in stanza:
            findings.append(f"{where}[{stanza}] is not <field>=<value>")
            continue
        field_name, value = stanza.split("=", 1)
        if field_name == "eventtype" and value not in enabled_eventtypes:
            findings.append(f"{where}[{stanza}] names an eventtype that eventtypes.conf does not define (enabled)")
        for tag, state in settings.items():
            if state.strip().lower() not in ("enabled", "disabled"):
                findings.append(f"{where}[{stanza}] {tag} = {state!r}: expected enabled or disabled")
    return findings


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.knowledge.lint", description=__doc__.split("\n")[0])
    parser.add_argument("--app", required=True, help="the app folder (holds default/ and lookups/)")
    args = parser.parse_args(argv)
    if not os.path.isdir(os.path.join(args.app, "default")):
        print(f"error: {args.app} has no default/ folder", file=sys.stderr)
        return 2
    findings = lint_app(args.app)
    for finding in findings:
        print(finding)
    print(f"{len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
