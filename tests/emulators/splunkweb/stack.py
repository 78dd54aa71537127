"""Everything the pages talk to, assembled: the app installed under a Splunk-like home, the splunkd double,
the app's REST handlers and the Splunk Web stand-in in front of them."""

from __future__ import annotations

import glob
import os
from typing import Any, Dict, Optional

from tests.splunk_runner import ModInputRunner
from tests.splunk_runner.runner import read_conf

from .handlers import AdminHandlerRunner
from .server import SplunkWebStandIn
from .splunkd import SplunkdForWeb


def app_confs(app_dir: str) -> Dict[str, Dict[str, Dict[str, str]]]:
    """The app's own ``default/<restRoot>_*.conf`` files (what UCC generates for the settings tabs)."""
    confs = {}
    for path in glob.glob(os.path.join(app_dir, "default", "*.conf")):
        name = os.path.splitext(os.path.basename(path))[0]
        if name.startswith("ta_"):
            confs[name] = {stanza: values for stanza, values in read_conf(path).items() if stanza != "default"}
    return confs


def input_defaults(app_dir: str) -> Dict[str, Dict[str, str]]:
    """``default/inputs.conf`` stanzas that define a modular-input scheme's defaults (``[<scheme>]``)."""
    stanzas = read_conf(os.path.join(app_dir, "default", "inputs.conf"))
    return {name: values for name, values in stanzas.items() if name != "default" and "://" not in name}


class SplunkWebStack:
    """The built app behind a Splunk Web stand-in, persisting to a splunkd double.

    Arguments:
        app_dir: The built app folder (it is copied to ``$SPLUNK_HOME/etc/apps/<app>`` as Splunk installs it).
        python: Splunk's Python for the handlers and the modular input.
        hec: Optional HEC emulator linked to the double (tokens created over REST become valid there).
        port: Port of the stand-in; 0 picks a free one.
    """

    def __init__(self, app_dir: str, python: Optional[str] = None, hec: Optional[Any] = None, port: int = 0) -> None:
        self.runner = ModInputRunner(app_dir, python)
        installed = self.runner.app_dir
        self.splunkd = SplunkdForWeb(input_defaults=input_defaults(installed), confs=app_confs(installed),
                                     server_name="hf1", hec=hec)
        self._port = port
        self.handlers: Optional[AdminHandlerRunner] = None
        self.web: Optional[SplunkWebStandIn] = None

    def start(self) -> "SplunkWebStack":
        self.splunkd.start()
        self.handlers = AdminHandlerRunner(self.runner.app_dir, self.runner.python, self.runner.environment(),
                                           self.splunkd.url, cwd=self.runner.splunk_home)
        self.web = SplunkWebStandIn(self.runner.app_dir, self.splunkd, self.handlers, port=self._port).start()
        return self

    def stop(self) -> None:
        if self.web is not None:
            self.web.stop()
        self.splunkd.stop()
        self.runner.cleanup()

    def __enter__(self) -> "SplunkWebStack":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
