#!/usr/bin/env python3
"""Build, test, benchmark and demo TA-aliyun-sls. Standard library only, so it runs on a fresh machine.

    python3 build.py                 build dist/TA-aliyun-sls-<version>.tar.gz, then the AppInspect gate
    python3 build.py test            the whole test suite in its own venv, against the built package
    python3 build.py test --reliability   the fault-injection scenarios with their summary table
    python3 build.py bench [--quick] throughput (calibrated), many-shards and freshness tables (bench/results/)
    python3 build.py demo            SLS + HEC emulators and the built add-on, with a live progress line
    python3 build.py screenshots     the setup pages in headless Chromium -> docs/images/*.png (README pictures)

Everything it creates lives under build/ and dist/; the source tree is never modified (UCC rewrites
globalConfig.json, so the build runs on a copy).
"""

from __future__ import annotations

import argparse
import ctypes.util
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from typing import Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(ROOT, "build")
VENVS = os.path.join(BUILD, "venvs")
DIST = os.path.join(ROOT, "dist")
APP_ID = "TA-aliyun-sls"

UCC_REQUIREMENT = "splunk-add-on-ucc-framework==6.6.0"
APPINSPECT_REQUIREMENT = "splunk-appinspect==4.3.1"
# Compiled files fail AppInspect (.pyc) or its aarch64 check (.so) and Splunk 10 is phasing out binary modules.
COMPILED_SUFFIXES = (".so", ".pyd", ".pyc", ".pyo", ".dll", ".dylib")
BAD_FINDINGS = ("failure", "error", "future_failure")


def say(message: str) -> None:
    print(f"[build] {message}", flush=True)


def fail(message: str) -> "NoReturn":  # type: ignore[name-defined]  # noqa: F821
    print(f"[build] ERROR: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def run(cmd: Sequence[str], *, cwd: str = ROOT, env: Optional[Dict[str, str]] = None, quiet: bool = False) -> None:
    """Run a command, streaming its output unless quiet; exit with its output on failure."""
    full_env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    full_env.update(env or {})
    if quiet:
        proc = subprocess.run(cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            print(proc.stdout[-6000:], file=sys.stderr)
            fail(f"command failed ({proc.returncode}): {' '.join(cmd)}")
        return
    proc = subprocess.run(cmd, cwd=cwd, env=full_env)
    if proc.returncode != 0:
        fail(f"command failed ({proc.returncode}): {' '.join(cmd)}")


# ---------------------------------------------------------------------------------------------------------------
# Interpreters and venvs


def pyenv_python(version_prefix: str) -> Optional[str]:
    """The newest pyenv CPython matching e.g. "3.9", or a pythonX.Y on PATH."""
    roots = [os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv")]
    for root in filter(None, roots):
        candidates = sorted(glob.glob(os.path.join(root, "versions", version_prefix + ".*", "bin", "python")))
        candidates = [c for c in candidates if os.path.basename(os.path.dirname(os.path.dirname(c))).count(".") == 2]
        if candidates:
            return candidates[-1]
    return shutil.which("python" + version_prefix)


def venv_python(name: str) -> str:
    sub = "Scripts" if os.name == "nt" else "bin"
    exe = "python.exe" if os.name == "nt" else "python"
    return os.path.join(VENVS, name, sub, exe)


def ensure_venv(name: str, requirements: List[str], base_python: str = sys.executable) -> str:
    """Create build/venvs/<name> with the requirements; reuse it while the requirements and base are unchanged."""
    stamp_path = os.path.join(VENVS, name + ".stamp")
    stamp = hashlib.sha256(json.dumps([base_python, requirements]).encode()).hexdigest()
    python = venv_python(name)
    if os.path.exists(python) and os.path.exists(stamp_path) and open(stamp_path).read() == stamp:
        return python
    say(f"creating venv {name} ({os.path.basename(base_python)}): {' '.join(requirements) or 'no packages'}")
    shutil.rmtree(os.path.join(VENVS, name), ignore_errors=True)
    os.makedirs(VENVS, exist_ok=True)
    run([base_python, "-m", "venv", os.path.join(VENVS, name)], quiet=True)
    if requirements:
        run([python, "-m", "pip", "install", "-q", *requirements], quiet=True)
    with open(stamp_path, "w") as handle:
        handle.write(stamp)
    return python


def ensure_libmagic() -> None:
    """AppInspect needs libmagic (python-magic); install it with apt-get on a fresh Debian machine."""
    if ctypes.util.find_library("magic"):
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        say("installing libmagic1 for AppInspect")
        run(["apt-get", "update", "-q"], quiet=True)
        run(["apt-get", "install", "-y", "-q", "libmagic1"], quiet=True, env={"DEBIAN_FRONTEND": "noninteractive"})
        return
    fail("AppInspect needs libmagic; install it (Debian/Ubuntu: apt-get install libmagic1; macOS: brew install libmagic)")


BROWSER_PACKAGES = ("chromium", "chromium-driver")
BROWSER_FILES = (("/usr/bin/chromium", "chromium"), ("/usr/bin/chromedriver", "chromedriver"))
SCREENSHOTS = {"configuration.png": "setup-configuration.png", "new-input.png": "setup-new-input.png",
               "dashboard.png": "setup-dashboard.png", "dashboard-custom.png": "setup-dashboard-shards.png"}


def ensure_browser() -> None:
    """The browser tests drive Debian's headless Chromium and its driver; install them with apt-get when missing."""
    if all(os.path.exists(path) or shutil.which(name) for path, name in BROWSER_FILES):
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        say(f"installing {' '.join(BROWSER_PACKAGES)} for the browser tests (about a minute)")
        run(["apt-get", "update", "-q"], quiet=True)
        run(["apt-get", "install", "-y", "-q", *BROWSER_PACKAGES], quiet=True, env={"DEBIAN_FRONTEND": "noninteractive"})
        return
    fail("the browser tests need Chromium and chromedriver; install them "
         f"(Debian/Ubuntu: apt-get install {' '.join(BROWSER_PACKAGES)})")


def runs_browser_tests(pytest_args: Sequence[str]) -> bool:
    """True when the selected tests include tests/ui (no path given means the whole suite)."""
    paths = [arg for arg in pytest_args if not arg.startswith("-")]
    return not paths or any(os.path.normpath(path.split("::")[0]) in ("tests", os.path.join("tests", "ui"))
                            or path.startswith(os.path.join("tests", "ui")) for path in paths)


# ---------------------------------------------------------------------------------------------------------------
# Build


def addon_version() -> str:
    with open(os.path.join(ROOT, "globalConfig.json")) as handle:
        return json.load(handle)["meta"]["version"]


def package_path(version: str) -> str:
    return os.path.join(DIST, f"{APP_ID}-{version}.tar.gz")


def source_files() -> List[str]:
    files = [os.path.join(ROOT, "globalConfig.json"), os.path.join(ROOT, "custom_dashboard.json")]
    for folder, _dirs, names in os.walk(os.path.join(ROOT, "package")):
        if "__pycache__" in folder:
            continue
        files.extend(os.path.join(folder, n) for n in names if not n.endswith(".pyc"))
    return files


def package_is_current(version: str) -> bool:
    target = package_path(version)
    if not os.path.exists(target):
        return False
    newest_source = max(os.path.getmtime(f) for f in source_files())
    return os.path.getmtime(target) >= newest_source


def compiled_files(folder: str) -> List[str]:
    found = []
    for path, dirs, names in os.walk(folder):
        found.extend(os.path.join(path, d) for d in dirs if d == "__pycache__")
        found.extend(os.path.join(path, n) for n in names if n.endswith(COMPILED_SUFFIXES))
    return sorted(os.path.relpath(f, folder) for f in found)


def lib_python() -> str:
    """The interpreter that resolves lib/: Python 3.9 (Splunk 9's runtime) when pyenv has it."""
    py39 = pyenv_python("3.9")
    if py39:
        return ensure_venv("py39-build", [], base_python=py39)
    say("WARNING: no Python 3.9 found (pyenv install 3.9); resolving lib/ with "
        f"{sys.version.split()[0]}, which may pick wheels Splunk 9 cannot load")
    return ensure_venv("lib-build", [])


def build_package() -> str:
    """ucc-gen build on a copy of the source, the compiled-file check, and ucc-gen package. Returns the tarball."""
    version = addon_version()
    ucc = os.path.join(os.path.dirname(ensure_venv("ucc", [UCC_REQUIREMENT])), "ucc-gen")
    builder = lib_python()
    src = os.path.join(BUILD, "src")
    out = os.path.join(BUILD, "ucc-output")
    shutil.rmtree(src, ignore_errors=True)
    os.makedirs(src)
    for name in ("globalConfig.json", "custom_dashboard.json"):
        shutil.copy2(os.path.join(ROOT, name), src)
    shutil.copytree(os.path.join(ROOT, "package"), os.path.join(src, "package"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    say(f"ucc-gen build {APP_ID} {version} (lib/ resolved by {builder})")
    pip_flags = []
    if not os.path.basename(os.path.dirname(os.path.dirname(builder))).startswith("py39"):
        pip_flags = ["--pip-version", "26.2.1"]  # pip 26.3 breaks UCC 6.6's splunktaucclib check
    run([ucc, "build", "--source", os.path.join(src, "package"), "--config", os.path.join(src, "globalConfig.json"),
         "--ta-version", version, "--python-binary-name", builder, "-o", out, "--overwrite", *pip_flags], quiet=True)
    app_dir = os.path.join(out, APP_ID)
    compiled = compiled_files(app_dir)
    if compiled:
        fail("compiled files in the package (lib/ must be pure Python):\n  " + "\n  ".join(compiled))
    os.makedirs(DIST, exist_ok=True)
    target = package_path(version)
    if os.path.exists(target):
        os.remove(target)
    run([ucc, "package", "--path", app_dir, "-o", DIST], quiet=True)
    if not os.path.exists(target):
        fail(f"ucc-gen package did not produce {target}")
    say(f"package: {os.path.relpath(target, ROOT)} ({os.path.getsize(target) / 1e6:.1f} MB)")
    return target


# ---------------------------------------------------------------------------------------------------------------
# AppInspect gate


def appinspect(package: str) -> bool:
    """Run AppInspect precert and cloud in parallel; print every bad finding with file:line; True if clean."""
    ensure_libmagic()
    tool = os.path.join(os.path.dirname(ensure_venv("appinspect", [APPINSPECT_REQUIREMENT])), "splunk-appinspect")
    modes = {"precert": ["--mode", "precert"], "cloud": ["--mode", "precert", "--included-tags", "cloud"]}
    reports: Dict[str, dict] = {}
    errors: Dict[str, str] = {}

    def inspect(name: str, args: List[str]) -> None:
        output = os.path.join(BUILD, f"appinspect-{name}.json")
        cmd = [tool, "inspect", package, *args, "--skip-trusted-libraries-update", "--data-format", "json",
               "--output-file", output, "--max-messages", "all"]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        if proc.returncode not in (0, 1) or not os.path.exists(output):
            errors[name] = proc.stdout[-3000:]
            return
        with open(output) as handle:
            reports[name] = json.load(handle)

    say("AppInspect --mode precert and --included-tags cloud (about a minute)")
    threads = [threading.Thread(target=inspect, args=item) for item in modes.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    clean = True
    summary_rows = []
    for name in modes:
        if name in errors:
            print(errors[name], file=sys.stderr)
            say(f"AppInspect {name} did not complete")
            clean = False
            continue
        report = reports[name]
        summary = report["summary"]
        summary_rows.append((name, summary))
        for group in report["reports"][0]["groups"]:
            for check in group["checks"]:
                if check["result"] not in BAD_FINDINGS:
                    continue
                clean = False
                for message in check["messages"] or [{"message": check["description"]}]:
                    where = message.get("message_filename") or "-"
                    if message.get("message_line"):
                        where += f":{message['message_line']}"
                    print(f"  {name}: {check['result'].upper()} {check['name']}: {where}: {message['message']}")
    print()
    print(f"{'AppInspect':<12}{'failure':>9}{'error':>7}{'future':>8}{'warning':>9}{'success':>9}")
    for name, summary in summary_rows:
        print(f"{name:<12}{summary.get('failure', 0):>9}{summary.get('error', 0):>7}"
              f"{summary.get('future_failure', 0):>8}{summary.get('warning', 0):>9}{summary.get('success', 0):>9}")
    print()
    return clean


def cmd_build(_args: argparse.Namespace) -> None:
    started = time.time()
    package = build_package()
    clean = appinspect(package)
    elapsed = time.time() - started
    if not clean:
        fail(f"AppInspect gate failed for {os.path.relpath(package, ROOT)} (see the findings above)")
    say(f"OK: {os.path.relpath(package, ROOT)} passed AppInspect precert and cloud with 0 failures, "
        f"0 errors, 0 future failures ({elapsed:.0f} s)")


# ---------------------------------------------------------------------------------------------------------------
# Tests


def test_python() -> str:
    with open(os.path.join(ROOT, "tests", "requirements.txt")) as handle:
        requirements = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    return ensure_venv("test", requirements)


def unpack_for_tests(package: str, folder: str = "test-app") -> str:
    """Unpack the built package the way Splunk installs it: etc/apps/<app id>."""
    apps = os.path.join(BUILD, folder)
    shutil.rmtree(apps, ignore_errors=True)
    os.makedirs(apps)
    with tarfile.open(package) as archive:
        archive.extractall(apps)
    return os.path.join(apps, APP_ID)


def tested_package() -> str:
    version = addon_version()
    if package_is_current(version):
        package = package_path(version)
        say(f"testing {os.path.relpath(package, ROOT)}")
        return package
    say("the package is missing or older than the source: building it first (AppInspect runs with `build.py`)")
    return build_package()


def cmd_test(args: argparse.Namespace) -> None:
    python = test_python()
    package = tested_package()
    if not args.reliability and runs_browser_tests(args.pytest_args):
        ensure_browser()
    env = {"TA_ALIYUN_SLS_APP": unpack_for_tests(package), "REQUIRE_BUILT_APP": "1"}
    pytest_args = ["-p", "no:cacheprovider", "-q", "-ra"]
    if args.full:
        env["TA_RELIABILITY_FULL"] = "1"
    if args.reliability:
        env["TA_RELIABILITY_SUMMARY"] = os.path.join(BUILD, "reliability-summary.json")
        if os.path.exists(env["TA_RELIABILITY_SUMMARY"]):
            os.remove(env["TA_RELIABILITY_SUMMARY"])
        pytest_args += ["tests/reliability"]
    else:
        pytest_args += ["tests"]
    pytest_args += args.pytest_args
    full_env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", **env)
    proc = subprocess.run([python, "-m", "pytest", *pytest_args], cwd=ROOT, env=full_env)
    if args.reliability and os.path.exists(env["TA_RELIABILITY_SUMMARY"]):
        print_reliability_summary(env["TA_RELIABILITY_SUMMARY"])
    if proc.returncode == 5:
        fail("pytest collected no tests")
    sys.exit(proc.returncode)


def cmd_screenshots(_args: argparse.Namespace) -> None:
    """Run the browser tests (they save screenshots) and copy the README's pictures into docs/images."""
    python = test_python()
    package = tested_package()
    ensure_browser()
    shots = os.path.join(BUILD, "ui-screenshots")
    shutil.rmtree(shots, ignore_errors=True)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", TA_ALIYUN_SLS_APP=unpack_for_tests(package),
               REQUIRE_BUILT_APP="1", UI_SCREENSHOTS=shots)
    proc = subprocess.run([python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/ui"], cwd=ROOT, env=env)
    missing = [name for name in SCREENSHOTS if not os.path.exists(os.path.join(shots, name))]
    if missing:
        fail(f"the browser tests saved no {', '.join(missing)} (see the failures above)")
    images = os.path.join(ROOT, "docs", "images")
    os.makedirs(images, exist_ok=True)
    for name, target in SCREENSHOTS.items():
        shutil.copyfile(os.path.join(shots, name), os.path.join(images, target))
        say(f"docs/images/{target}")
    if proc.returncode != 0:
        say("WARNING: some browser tests failed (above); the pictures show the pages as they are")


def print_reliability_summary(path: str) -> None:
    with open(path) as handle:
        rows = json.load(handle)
    header = f"{'scenario':<34}{'put':>9}{'delivered':>11}{'missing':>9}{'duplicates':>12}{'peak RSS MB':>13}"
    print()
    print(header)
    print("-" * len(header))
    for row in rows:
        rss = row.get("peak_rss_mb")
        print(f"{row['scenario']:<34}{row['put']:>9}{row['delivered']:>11}{row['missing']:>9}"
              f"{row['duplicates']:>12}{(f'{rss:.0f}' if rss else '-'):>13}")


def built_app_for_tools() -> str:
    """The built app, unpacked, for the benchmark and the demo (building it if the source changed)."""
    version = addon_version()
    package = package_path(version) if package_is_current(version) else build_package()
    return unpack_for_tests(package, "tool-app")


def cmd_bench(args: argparse.Namespace) -> None:
    python = test_python()
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", TA_ALIYUN_SLS_APP=built_app_for_tools())
    extra = ["--quick"] if args.quick else []
    proc = subprocess.run([python, "-m", "bench.run", *extra, *args.bench_args], cwd=ROOT, env=env)
    sys.exit(proc.returncode)


def cmd_demo(args: argparse.Namespace) -> None:
    python = test_python()
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", TA_ALIYUN_SLS_APP=built_app_for_tools())
    proc = subprocess.run([python, "-m", "demo", *args.demo_args], cwd=ROOT, env=env)
    sys.exit(proc.returncode)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("build", help="build the package and run the AppInspect gate (the default)")
    test = commands.add_parser("test", help="run the test suite in its own venv")
    test.add_argument("--reliability", action="store_true", help="run the fault-injection scenarios and print the table")
    test.add_argument("--full", action="store_true", help="full-size reliability scenarios (the 1 GB backlog)")
    test.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    bench = commands.add_parser("bench", help="throughput against the SDK (calibrated), many shards, freshness")
    bench.add_argument("--quick", action="store_true", help="smaller data sets and windows, about four minutes")
    bench.add_argument("bench_args", nargs="*", help="extra arguments for bench.run (after --)")
    demo = commands.add_parser("demo", help="SLS and HEC emulators with the built add-on, no account needed")
    demo.add_argument("demo_args", nargs="*", help="extra arguments for the demo (after --)")
    commands.add_parser("screenshots", help="regenerate the README pictures of the setup pages (docs/images)")
    args = parser.parse_args(argv)
    handlers = {None: cmd_build, "build": cmd_build, "test": cmd_test, "bench": cmd_bench, "demo": cmd_demo,
                "screenshots": cmd_screenshots}
    handlers[args.command](args)


if __name__ == "__main__":
    main()
