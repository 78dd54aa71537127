"""Shared fixtures: the core package on sys.path for unit tests."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "package", "bin")
if BIN not in sys.path:
    sys.path.insert(0, BIN)
