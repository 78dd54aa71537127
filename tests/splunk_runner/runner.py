"""Launch a built app's modular input the way splunkd does, and read what it streams back.

splunkd runs ``<python> $SPLUNK_HOME/etc/apps/<app>/bin/<scheme>.py`` with the input definition XML on
stdin (then closes stdin), reads the XML event stream from stdout, logs stderr to splunkd.log, and
stops the process with SIGTERM when the input is disabled or splunkd shuts down. ``--scheme`` and
``--validate-arguments`` are run the same way.
"""

from __future__ import annotations

import codecs
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from .stream import StreamParser

SPLUNK_PYTHON_VERSIONS = ("3.9", "3.13")
DEFAULT_APP_NAME = "TA-aliyun-sls"
DEFAULT_SCRIPT = "aliyun_sls.py"
# Variables of the test process that would leak a foreign Python setup into Splunk's interpreter.
_SCRUBBED_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV", "PYTEST_CURRENT_TEST",
                 "PYTHONBREAKPOINT")

ParamValue = Union[str, int, float, Sequence[str]]


def interpreters() -> Dict[str, str]:
    """The Splunk-runtime Pythons available here: ``{"3.9": path, "3.13": path}`` from pyenv.

    Returns:
        Version label -> interpreter path, newest patch release of each; ``{"current": sys.executable}``
        when pyenv has none of them.
    """
    root = os.environ.get("PYENV_ROOT") or os.path.join(os.path.expanduser("~"), ".pyenv")
    found: Dict[str, str] = {}
    for version in SPLUNK_PYTHON_VERSIONS:
        candidates = []
        for directory in glob.glob(os.path.join(root, "versions", f"{version}.*")):
            patch = os.path.basename(directory)[len(version) + 1:]
            executable = os.path.join(directory, "bin", "python")
            if patch.isdigit() and os.access(executable, os.X_OK):
                candidates.append((int(patch), executable))
        if candidates:
            found[version] = max(candidates)[1]
    return found or {"current": sys.executable}


@dataclass
class Scheme:
    """The parsed ``--scheme`` output."""

    title: str
    description: str
    use_external_validation: bool
    use_single_instance: bool
    streaming_mode: str
    args: Dict[str, Dict[str, str]]    # arg name -> {"title", "description", "data_type", "required_on_create", ...}
    xml: str


@dataclass
class ValidationResult:
    """Outcome of ``--validate-arguments``: exit code and the ``<error><message>`` text, if any."""

    returncode: int
    error_message: Optional[str]
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class RunningInput:
    """A launched modular input. Events are parsed from stdout while it runs (thread-safe snapshots)."""

    def __init__(self, process: "subprocess.Popen[bytes]", stanza: str) -> None:
        self.process = process
        self.stanza = stanza
        self._parser = StreamParser()
        self._changed = threading.Condition()
        self._stderr = bytearray()
        self._stdout_done = False
        self._read_rate: Optional[float] = None    # bytes per second while throttled (a slow splunkd)
        self.killed = False
        self._readers = [
            threading.Thread(target=self._read_stdout, name=f"modinput-stdout-{process.pid}", daemon=True),
            threading.Thread(target=self._read_stderr, name=f"modinput-stderr-{process.pid}", daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    # ----------------------------------------------------------------------------------- readers
    def _read_stdout(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stream = self.process.stdout
        assert stream is not None
        while True:
            chunk = os.read(stream.fileno(), 65536)
            text = decoder.decode(chunk, final=not chunk)
            with self._changed:
                if text:
                    self._parser.feed(text)
                if not chunk:
                    self._parser.close()
                    self._stdout_done = True
                self._changed.notify_all()
            if not chunk:
                return
            rate = self._read_rate
            if rate:
                time.sleep(len(chunk) / rate)

    def throttle(self, bytes_per_second: Optional[float]) -> None:
        """Read stdout at most this fast from now on, as a busy splunkd would (None: as fast as it comes)."""
        self._read_rate = bytes_per_second

    def _read_stderr(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        while True:
            chunk = os.read(stream.fileno(), 65536)
            with self._changed:
                self._stderr.extend(chunk)
                self._changed.notify_all()
            if not chunk:
                return

    # --------------------------------------------------------------------------------- inspection
    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def returncode(self) -> Optional[int]:
        return self.process.poll()

    @property
    def events(self) -> List[Dict[str, Any]]:
        """Events parsed so far: dicts with stanza, time, host, source, sourcetype, index, data
        (None when the element was absent), unbroken and done."""
        with self._changed:
            return [dict(event) for event in self._parser.events]

    @property
    def protocol_errors(self) -> List[str]:
        """Stream problems splunkd would not accept (text outside events, malformed XML, ...)."""
        with self._changed:
            return list(self._parser.errors)

    @property
    def stream_closed(self) -> bool:
        """True when every ``<stream>`` written so far was closed with ``</stream>``."""
        with self._changed:
            return self._parser.streams_opened > 0 and not self._parser.in_stream

    def stderr_text(self) -> str:
        """What the script wrote to stderr (splunkd.log in production), so far."""
        with self._changed:
            return self._stderr.decode("utf-8", errors="replace")

    def wait_for_events(self, count: int, timeout: float) -> List[Dict[str, Any]]:
        """Wait until ``count`` events arrived, stdout ended, or ``timeout``; return the events."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._parser.events) < count and not self._stdout_done:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return [dict(event) for event in self._parser.events]

    def wait_for_stderr(self, text: str, timeout: float) -> bool:
        """Wait until ``text`` appears in stderr; True if it did."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while text not in self._stderr.decode("utf-8", errors="replace"):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stdout_done and self.process.poll() is not None:
                    return text in self._stderr.decode("utf-8", errors="replace")
                self._changed.wait(min(remaining, 0.2))
            return True

    # ---------------------------------------------------------------------------------- stopping
    def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself; return its exit code.

        Raises:
            subprocess.TimeoutExpired: It is still running after ``timeout``.
        """
        returncode = self.process.wait(timeout=timeout)
        self._join_readers()
        return returncode

    def terminate(self, timeout: float = 30.0) -> int:
        """Stop like splunkd: SIGTERM, wait up to ``timeout``, then kill. Returns the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.process.kill()
                self.process.wait(timeout=30)
        self._join_readers()
        return self.process.returncode

    def kill(self) -> int:
        """Kill at once (splunkd crashing, or the host losing power). Returns the exit code."""
        if self.process.poll() is None:
            self.killed = True
            self.process.kill()
            self.process.wait(timeout=30)
        self._join_readers()
        return self.process.returncode

    def _join_readers(self) -> None:
        for reader in self._readers:
            reader.join(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None and not stream.closed:
                stream.close()

    def __enter__(self) -> "RunningInput":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.terminate()


class ModInputRunner:
    """Runs ``bin/<script>`` of a built app under a Splunk-like ``$SPLUNK_HOME``.

    Arguments:
        app_dir: The built app folder (the one holding ``bin/``, ``default/``, ``lib/``).
        python: Interpreter; default the newest entry of :func:`interpreters`.
        script: Script name in ``bin/``; its stem is the scheme name (``aliyun_sls``).
        app_name: App name splunkd reports in the stanza (``app="..."``).
        splunk_home: ``$SPLUNK_HOME``; a temporary directory (removed by :meth:`cleanup`) if None.
        install: Copy the app to ``$SPLUNK_HOME/etc/apps/<app_name>`` and run it from there, as splunkd
            does; False runs it in place.
        server_host: ``server_host`` of the input definition (and the default ``host``).
        cwd: Working directory of the script; default ``$SPLUNK_HOME`` (never the app's bin/).
    """

    def __init__(self, app_dir: str, python: Optional[str] = None, script: str = DEFAULT_SCRIPT,
                 app_name: str = DEFAULT_APP_NAME, splunk_home: Optional[str] = None, install: bool = True,
                 server_host: str = "hf1", cwd: Optional[str] = None) -> None:
        self.source_app_dir = os.path.abspath(app_dir)
        self.python = python or list(interpreters().values())[-1]
        self.script = script
        self.scheme_name = os.path.splitext(script)[0]
        self.app_name = app_name
        self.server_host = server_host
        self._own_home = splunk_home is None
        self.splunk_home = os.path.abspath(splunk_home or tempfile.mkdtemp(prefix="splunk-home-"))
        for directory in ("var/log/splunk", "var/run/splunk", "var/lib/splunk/modinputs", "etc/apps"):
            os.makedirs(os.path.join(self.splunk_home, directory), exist_ok=True)
        if install:
            self.app_dir = os.path.join(self.splunk_home, "etc", "apps", app_name)
            if not os.path.isdir(self.app_dir):
                shutil.copytree(self.source_app_dir, self.app_dir,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))
        else:
            self.app_dir = self.source_app_dir
        self.cwd = cwd or self.splunk_home
        # Added to every launched process's environment (e.g. TA_ALIYUN_SLS_IMDS_URL, pointing at the metadata twin).
        self.extra_env: Dict[str, str] = {}

    @property
    def script_path(self) -> str:
        return os.path.join(self.app_dir, "bin", self.script)

    @property
    def log_dir(self) -> str:
        """``$SPLUNK_HOME/var/log/splunk``, where solnlib's log handler writes."""
        return os.path.join(self.splunk_home, "var", "log", "splunk")

    def default_checkpoint_dir(self) -> str:
        """``$SPLUNK_DB/modinputs/<scheme>``, splunkd's checkpoint directory for this input kind."""
        path = os.path.join(self.splunk_home, "var", "lib", "splunk", "modinputs", self.scheme_name)
        os.makedirs(path, exist_ok=True)
        return path

    def environment(self) -> Dict[str, str]:
        """The environment splunkd gives a modular input (the test process's, minus foreign Python setup)."""
        env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED_ENV}
        env.update({
            "SPLUNK_HOME": self.splunk_home,
            "SPLUNK_ETC": os.path.join(self.splunk_home, "etc"),
            "SPLUNK_DB": os.path.join(self.splunk_home, "var", "lib", "splunk"),
            "SPLUNK_SERVER_NAME": "Splunkd",
            # Splunk apps must never contain compiled Python (AppInspect fails them).
            "PYTHONDONTWRITEBYTECODE": "1",
        })
        env.update(self.extra_env)
        return env

    def cleanup(self) -> None:
        """Remove the temporary ``$SPLUNK_HOME`` this runner created."""
        if self._own_home:
            shutil.rmtree(self.splunk_home, ignore_errors=True)

    def __enter__(self) -> "ModInputRunner":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    # ------------------------------------------------------------------------------ definitions
    def stanza_params(self, params: Mapping[str, ParamValue], merge_defaults: bool = True) -> Dict[str, ParamValue]:
        """Params as splunkd passes them: system defaults (host, index, disabled) < the app's
        ``default/inputs.conf [<scheme>]`` < the stanza's own values."""
        merged: Dict[str, ParamValue] = {}
        if merge_defaults:
            merged.update({"host": self.server_host, "index": "default", "disabled": "0"})
            merged.update(read_conf(os.path.join(self.app_dir, "default", "inputs.conf")).get(self.scheme_name, {}))
        merged.update(params)
        return merged

    def input_definition(self, stanza_name: str, params: Mapping[str, ParamValue], server_uri: str,
                         session_key: str, checkpoint_dir: Optional[str] = None,
                         merge_defaults: bool = True) -> str:
        """The XML splunkd writes to a modular input's stdin in run mode."""
        root = ElementTree.Element("input")
        _metadata(root, self.server_host, server_uri, session_key, checkpoint_dir or self.default_checkpoint_dir())
        configuration = ElementTree.SubElement(root, "configuration")
        stanza = ElementTree.SubElement(configuration, "stanza",
                                        {"name": self.full_stanza_name(stanza_name), "app": self.app_name})
        _params(stanza, self.stanza_params(params, merge_defaults))
        return ElementTree.tostring(root, encoding="unicode")

    def validation_definition(self, stanza_name: str, params: Mapping[str, ParamValue], server_uri: str,
                              session_key: str, checkpoint_dir: Optional[str] = None) -> str:
        """The XML splunkd writes to stdin for ``--validate-arguments``."""
        root = ElementTree.Element("items")
        _metadata(root, self.server_host, server_uri, session_key, checkpoint_dir or self.default_checkpoint_dir())
        item = ElementTree.SubElement(root, "item", {"name": self.short_stanza_name(stanza_name)})
        _params(item, params)
        return ElementTree.tostring(root, encoding="unicode")

    def full_stanza_name(self, stanza_name: str) -> str:
        prefix = f"{self.scheme_name}://"
        return stanza_name if stanza_name.startswith(prefix) else prefix + stanza_name

    def short_stanza_name(self, stanza_name: str) -> str:
        prefix = f"{self.scheme_name}://"
        return stanza_name[len(prefix):] if stanza_name.startswith(prefix) else stanza_name

    # ---------------------------------------------------------------------------------- running
    def _popen(self, arguments: List[str]) -> "subprocess.Popen[bytes]":
        if not os.path.isfile(self.script_path):
            raise FileNotFoundError(f"no modular input script at {self.script_path}")
        return subprocess.Popen([self.python, self.script_path] + arguments, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.cwd,
                                env=self.environment())

    def start(self, stanza_name: str, params: Mapping[str, ParamValue], server_uri: str, session_key: str,
              checkpoint_dir: Optional[str] = None, merge_defaults: bool = True) -> RunningInput:
        """Launch the input for one stanza; stdin gets the definition and is then closed (splunklib
        reads it to EOF).

        Arguments:
            stanza_name: ``prod`` or ``aliyun_sls://prod``.
            params: Stanza values; a list value becomes a ``<param_list>``.
            server_uri: ``server_uri`` (the splunkd double's URL).
            session_key: ``session_key``.
            checkpoint_dir: Default ``$SPLUNK_HOME/var/lib/splunk/modinputs/<scheme>``.
            merge_defaults: Merge splunkd's and the app's defaults into ``params``.

        Returns:
            The running input; stop it with :meth:`RunningInput.terminate`.
        """
        definition = self.input_definition(stanza_name, params, server_uri, session_key, checkpoint_dir,
                                           merge_defaults)
        process = self._popen([])
        running = RunningInput(process, self.full_stanza_name(stanza_name))
        assert process.stdin is not None
        try:
            process.stdin.write(definition.encode("utf-8"))
            process.stdin.close()
        except BrokenPipeError:
            pass  # the script exited before reading; its exit code and stderr tell why
        return running

    def _run_once(self, arguments: List[str], stdin_text: str, timeout: float) -> "subprocess.CompletedProcess[str]":
        process = self._popen(arguments)
        try:
            stdout, stderr = process.communicate(stdin_text.encode("utf-8"), timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
        return subprocess.CompletedProcess(process.args, process.returncode,
                                           stdout.decode("utf-8", errors="replace"),
                                           stderr.decode("utf-8", errors="replace"))

    def scheme(self, timeout: float = 60.0) -> Scheme:
        """Run ``--scheme`` and parse it.

        Raises:
            RuntimeError: The script failed or printed something that is not a scheme.
        """
        completed = self._run_once(["--scheme"], "", timeout)
        if completed.returncode != 0:
            raise RuntimeError(f"--scheme exited {completed.returncode}: {completed.stderr.strip()[-2000:]}")
        try:
            root = ElementTree.fromstring(completed.stdout)
        except ElementTree.ParseError as error:
            raise RuntimeError(f"--scheme printed no XML scheme ({error}): {completed.stdout[:500]!r}") from error
        if root.tag != "scheme":
            raise RuntimeError(f"--scheme printed <{root.tag}>, not <scheme>")
        args = {}
        for arg in root.iterfind("endpoint/args/arg"):
            args[arg.get("name", "")] = {child.tag: (child.text or "") for child in arg}
        return Scheme(
            title=root.findtext("title", ""),
            description=root.findtext("description", ""),
            use_external_validation=_xml_bool(root.findtext("use_external_validation", "false")),
            use_single_instance=_xml_bool(root.findtext("use_single_instance", "false")),
            streaming_mode=root.findtext("streaming_mode", "simple"),
            args=args,
            xml=completed.stdout,
        )

    def validate(self, stanza_name: str, params: Mapping[str, ParamValue], server_uri: str = "",
                 session_key: str = "", checkpoint_dir: Optional[str] = None,
                 timeout: float = 60.0) -> ValidationResult:
        """Run ``--validate-arguments`` with the parameters splunkd would send for a create/edit."""
        definition = self.validation_definition(stanza_name, params, server_uri, session_key, checkpoint_dir)
        completed = self._run_once(["--validate-arguments"], definition, timeout)
        message = None
        match = re.search(r"<error>.*</error>", completed.stdout, re.DOTALL)
        if match:
            try:
                message = ElementTree.fromstring(match.group(0)).findtext("message")
            except ElementTree.ParseError:
                message = match.group(0)
        return ValidationResult(completed.returncode, message, completed.stdout, completed.stderr)


def _metadata(root: ElementTree.Element, server_host: str, server_uri: str, session_key: str,
              checkpoint_dir: str) -> None:
    for tag, value in (("server_host", server_host), ("server_uri", server_uri), ("session_key", session_key),
                       ("checkpoint_dir", checkpoint_dir)):
        ElementTree.SubElement(root, tag).text = value


def _params(parent: ElementTree.Element, params: Mapping[str, ParamValue]) -> None:
    for name, value in params.items():
        if isinstance(value, (list, tuple)):
            param_list = ElementTree.SubElement(parent, "param_list", {"name": name})
            for item in value:
                ElementTree.SubElement(param_list, "value").text = str(item)
        else:
            ElementTree.SubElement(parent, "param", {"name": name}).text = str(value)


def _xml_bool(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "t", "yes", "y")


def read_conf(path: str) -> Dict[str, Dict[str, str]]:
    """Read a Splunk .conf file (stanzas, ``key = value``, ``#`` comments, ``\\`` line continuations).

    Returns:
        stanza -> {key: value}; keys before any stanza go to ``"default"``. A missing file gives {}.
    """
    if not os.path.isfile(path):
        return {}
    stanzas: Dict[str, Dict[str, str]] = {}
    current = stanzas.setdefault("default", {})
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        while line.endswith("\\") and index + 1 < len(lines):
            index += 1
            line = line[:-1] + "\n" + lines[index]
        index += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stanzas.setdefault(stripped[1:-1].strip(), {})
        elif "=" in stripped:
            key, _, value = stripped.partition("=")
            current[key.strip()] = value.strip()
    return stanzas

