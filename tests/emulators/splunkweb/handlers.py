"""Run the app's ``[admin_external:*]`` REST handlers as splunkd does: one script run per request, under the app's
Python, with the ``splunk.admin`` shim (``shim/``) standing in for Splunk's private package."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

from tests.splunk_runner.runner import read_conf

SHIM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim")
# splunkd's own arguments: they steer the REST call and never reach a handler's callerArgs.
GENERIC_ARGS = ("output_mode", "count", "offset", "search", "sort_dir", "sort_key", "sort_mode", "f", "summarize",
                "name")


@dataclass
class HandlerResponse:
    """What splunkd made of one handler run: a status and either entries or an error text."""

    status: int
    entries: List[Dict[str, Any]]
    error: Optional[str] = None
    stderr: str = ""


def declared_handlers(app_dir: str) -> Dict[str, str]:
    """``{endpoint: handlerfile}`` of every ``[admin_external:<endpoint>]`` stanza in the app's restmap.conf."""
    restmap = read_conf(os.path.join(app_dir, "default", "restmap.conf"))
    return {stanza.split(":", 1)[1]: values["handlerfile"] for stanza, values in restmap.items()
            if stanza.startswith("admin_external:") and "handlerfile" in values}


class AdminHandlerRunner:
    """Answers REST calls to the app's admin_external endpoints by running their handler scripts.

    Arguments:
        app_dir: The app as installed (``$SPLUNK_HOME/etc/apps/<app>``): UCC handlers take the app name from it.
        python: Splunk's Python (3.9 or 3.13).
        environment: The process environment splunkd gives its Python (see ``ModInputRunner.environment``).
        splunkd_uri: The management URL the handlers call back (``SPLUNKD_URI``).
        cwd: Working directory of the handler process.
    """

    def __init__(self, app_dir: str, python: str, environment: Mapping[str, str], splunkd_uri: str,
                 cwd: Optional[str] = None) -> None:
        self.app_dir = app_dir
        self.python = python
        self.environment = dict(environment)
        self.splunkd_uri = splunkd_uri
        self.cwd = cwd or app_dir
        self.handlers = declared_handlers(app_dir)

    def call(self, endpoint: str, action: str, entity_id: Optional[str], args: Mapping[str, List[str]],
             session_key: str, user: str = "admin", timeout: float = 90.0) -> HandlerResponse:
        """Run ``endpoint``'s handler for ``action`` (list, create, edit, remove) on ``entity_id`` (None: the
        collection) with ``args`` (each value a list, as splunkd passes them)."""
        handler_file = self.handlers[endpoint]
        arguments = {key: list(values) for key, values in args.items() if key not in GENERIC_ARGS}
        with tempfile.TemporaryDirectory(prefix="admin-shim-") as work:
            request_path = os.path.join(work, "request.json")
            response_path = os.path.join(work, "response.json")
            with open(request_path, "w", encoding="utf-8") as handle:
                json.dump({"action": action, "id": entity_id, "args": arguments, "session_key": session_key,
                           "user": user, "app": os.path.basename(self.app_dir)}, handle)
            env = dict(self.environment, PYTHONPATH=SHIM_DIR, SPLUNKD_URI=self.splunkd_uri,
                       SPLUNK_ADMIN_SHIM_REQUEST=request_path, SPLUNK_ADMIN_SHIM_RESPONSE=response_path)
            completed = subprocess.run([self.python, os.path.join(self.app_dir, "bin", handler_file)],
                                       cwd=self.cwd, env=env, capture_output=True, text=True, timeout=timeout)
            if not os.path.exists(response_path):
                return HandlerResponse(500, [], _script_failure(completed), completed.stderr)
            with open(response_path, encoding="utf-8") as handle:
                response = json.load(handle)
        return HandlerResponse(response["status"], response.get("entries", []), response.get("error"),
                               completed.stderr)


def _script_failure(completed: "subprocess.CompletedProcess[str]") -> str:
    """splunkd's message for a handler script that died before answering (an import error, say)."""
    lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else f"exit code {completed.returncode}"
    kind, _, text = last.partition(": ")
    return (f'Unexpected error "<class \'{kind}\'>" from python handler: "{text or kind}". '
            "See splunkd.log/python.log for more details.")
