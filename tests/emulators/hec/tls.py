"""Self-signed TLS material for the loopback test doubles (HEC emulator, splunkd double).

The certificate is made once per process with the ``openssl`` command line tool (the stdlib cannot
create keys) and removed at interpreter exit. Clients in the tests connect with verification off,
as solnlib and splunklib do by default against splunkd.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Optional, Tuple

_lock = threading.Lock()
_material: Optional[Tuple[str, str]] = None


class TlsUnavailable(RuntimeError):
    """Raised when no ``openssl`` binary can make the self-signed certificate."""


def self_signed_cert() -> Tuple[str, str]:
    """Return ``(cert_path, key_path)`` of a self-signed certificate for 127.0.0.1/localhost.

    Returns:
        Paths of the PEM certificate and its unencrypted private key.

    Raises:
        TlsUnavailable: ``openssl`` is missing or failed.
    """
    global _material
    with _lock:
        if _material is not None:
            return _material
        openssl = shutil.which("openssl")
        if openssl is None:
            raise TlsUnavailable("openssl is not on PATH; run the doubles with tls=False")
        directory = Path(tempfile.mkdtemp(prefix="ta-sls-tls-"))
        atexit.register(shutil.rmtree, str(directory), True)
        cert, key = directory / "cert.pem", directory / "key.pem"
        # An EC key is generated in milliseconds; RSA 2048 would cost a second on a busy machine.
        command = [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "7",
            "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise TlsUnavailable(f"openssl failed: {result.stderr.strip()}")
        _material = (str(cert), str(key))
        return _material


def server_context() -> ssl.SSLContext:
    """Return a server-side SSL context loaded with the self-signed certificate."""
    cert, key = self_signed_cert()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def wrap_accepted(context: ssl.SSLContext, sock: socket.socket, timeout: float) -> ssl.SSLSocket:
    """Do the server-side TLS handshake on an accepted socket (in the handler thread, not the acceptor).

    Arguments:
        context: Server SSL context.
        sock: Accepted plain socket.
        timeout: Seconds a client may take to finish the handshake.

    Returns:
        The wrapped socket.
    """
    sock.settimeout(timeout)
    return context.wrap_socket(sock, server_side=True)
