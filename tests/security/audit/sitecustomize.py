"""Test support: records every network-relevant audit event of a Python process to $DNM_AUDIT_LOG.

Put this directory on PYTHONPATH of a `dnm` run (tests/security/test_leaks.py does) and set
DNM_AUDIT_LOG to a file: Python's audit hooks (PEP 578) then report each socket connect, send to an
address, bind, name lookup and subprocess the process (and any Python child) makes, one JSON line
each, with the pid. Code in C libraries that opens its own sockets (libpq) is not seen; the test
says so where it matters. Without DNM_AUDIT_LOG this module does nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from typing import Any

EVENTS = {
    "socket.connect",
    "socket.sendto",
    "socket.sendmsg",
    "socket.bind",
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyaddr",
    "socket.getnameinfo",
    "subprocess.Popen",
}


def _plain(value: Any) -> Any:
    """A JSON-friendly form of an audit argument (addresses are tuples, paths may be bytes)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)


def _install(path: str) -> None:
    # Opened once, written with os.write: the hook must not raise audit events of its own ("open").
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event not in EVENTS:
            return
        record: dict[str, Any] = {"pid": os.getpid(), "event": event}
        if event in ("socket.connect", "socket.sendto", "socket.sendmsg", "socket.bind"):
            sock = args[0]
            family = getattr(sock, "family", None)
            record["family"] = family.name if isinstance(family, socket.AddressFamily) else repr(family)
            record["address"] = _plain(args[-1])
        elif event == "subprocess.Popen":
            record["executable"] = _plain(args[0])
            record["args"] = _plain(args[1])
        else:
            record["args"] = _plain(args)
        # A full disk must not change what the process under test does.
        with contextlib.suppress(OSError):
            os.write(descriptor, (json.dumps(record) + "\n").encode())

    sys.addaudithook(hook)


if os.environ.get("DNM_AUDIT_LOG"):
    _install(os.environ["DNM_AUDIT_LOG"])
