"""ECS instance metadata twin (see server.py)."""

from .server import ImdsEmulator

__all__ = ["ImdsEmulator"]
