"""Getting a ready Tor for a crawl: launch a dedicated tor through stem, or attach to a running one.

Either way the crawl starts only when Tor reports 100% bootstrap, and the crawl knows Tor's version,
its SOCKS port and its control port. Settings read by `tor_from_settings`: `DNM_TOR_MODE` ("launch"
or "attach"), `DNM_TOR_BINARY`, `DNM_TOR_DATA_DIR`, `DNM_TOR_SOCKS_PORT`, `DNM_TOR_CONTROL_PORT`,
`DNM_TOR_BOOTSTRAP_TIMEOUT`, `DNM_TOR_EXTRA_CONFIG` (torrc options, e.g. a private network's
DirAuthority lines).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import stem
from stem.control import Controller

from transport.errors import TorBootstrapError, TorControlError, TorNotInstalled

logger = logging.getLogger(__name__)

Progress = Callable[[int, str], None]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Debian installs tor in /usr/sbin, which is not on a normal user's PATH.
SEARCH_PATH_FALLBACK = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def tor_binary(explicit: str | None = None) -> str:
    """The tor binary: explicit, else $DNM_TOR_BINARY, else `tor` on PATH or in /usr/sbin (Debian)."""
    name = explicit or os.environ.get("DNM_TOR_BINARY") or "tor"
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(SEARCH_PATH_FALLBACK))
    if found is None:
        raise TorNotInstalled(name)
    return found


def render_torrc(config: dict[str, Any]) -> str:
    """A torrc from option -> value; a list value gives one line per item."""
    lines = []
    for key, value in config.items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"{key} {item}".rstrip())
    return "\n".join(lines) + "\n"


@dataclass
class TorInstance:
    """A Tor the crawl can use: where its SOCKS and control ports are, and how to restart it."""

    socks_port: int
    control_port: int
    version: str
    launched: bool
    data_dir: Path | None = None
    binary: str | None = None
    process: subprocess.Popen[bytes] | None = None
    bootstrap_timeout: float = 90.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def socks_url(self) -> str:
        return f"socks5h://127.0.0.1:{self.socks_port}"

    def controller(self) -> Controller:
        """An authenticated controller (cookie or no auth); the caller closes it."""
        try:
            controller = Controller.from_port(address="127.0.0.1", port=self.control_port)
            controller.authenticate()
        except (stem.SocketError, stem.connection.AuthenticationFailure) as exc:
            raise TorControlError(
                f"cannot use tor's control port 127.0.0.1:{self.control_port}: {exc}"
            ) from exc
        return controller

    def is_alive(self) -> bool:
        """True when the control port answers and tor says it has a working circuit."""
        try:
            with self.controller() as controller:
                return controller.get_info("status/circuit-established", "0") == "1"
        except (TorControlError, stem.ControllerError):
            return False

    def restart(self, progress: Progress | None = None) -> None:
        """Relaunch a tor we launched (same ports and data directory); wait for an attached one."""
        with self._lock:
            if self.is_alive():
                return
            if self.launched:
                if self.data_dir is None:
                    raise TorControlError("cannot restart tor: its data directory (and torrc) is unknown")
                self.stop()
                torrc = self.data_dir / "torrc"
                self.process = _launch(self.binary or tor_binary(), torrc, self.bootstrap_timeout, progress)
            else:
                _wait_until(self.is_alive, self.bootstrap_timeout, f"tor on control port {self.control_port}")

    def stop(self) -> None:
        """Stop a tor we launched (never one we attached to), including one restarted mid-crawl."""
        if not self.launched:
            return
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.data_dir is not None:
            # A tor restarted by the crawl's middleware is not our child object; tor wrote its pid.
            _kill_pid_file(self.data_dir / "tor.pid")

    def settings(self) -> dict[str, Any]:
        """The Scrapy settings that hand this Tor to a crawl (and let it restart a tor it launched)."""
        return {
            "DNM_TRANSPORT": "tor",
            "DNM_TOR_SOCKS_PORT": self.socks_port,
            "DNM_TOR_CONTROL_PORT": self.control_port,
            "DNM_TOR_VERSION": self.version,
            "DNM_TOR_LAUNCHED": self.launched,
            "DNM_TOR_DATA_DIR": str(self.data_dir) if self.data_dir else None,
            "DNM_TOR_BINARY": self.binary,
            "DNM_TOR_BOOTSTRAP_TIMEOUT": self.bootstrap_timeout,
        }

    @classmethod
    def from_settings(cls, settings: Any) -> TorInstance:
        """The Tor a crawl was handed (see `settings`); nothing is launched or checked here."""
        socks, control = settings.getint("DNM_TOR_SOCKS_PORT"), settings.getint("DNM_TOR_CONTROL_PORT")
        if not socks or not control:
            raise TorControlError(
                "the tor transport needs DNM_TOR_SOCKS_PORT and DNM_TOR_CONTROL_PORT (dnm crawl sets them)"
            )
        data_dir = settings.get("DNM_TOR_DATA_DIR")
        return cls(
            socks_port=socks,
            control_port=control,
            version=settings.get("DNM_TOR_VERSION") or "",
            launched=settings.getbool("DNM_TOR_LAUNCHED"),
            data_dir=Path(data_dir) if data_dir else None,
            binary=settings.get("DNM_TOR_BINARY"),
            bootstrap_timeout=settings.getfloat("DNM_TOR_BOOTSTRAP_TIMEOUT", 90.0),
        )


def launch_tor(
    *,
    binary: str | None = None,
    data_dir: Path | None = None,
    socks_port: int | None = None,
    control_port: int | None = None,
    extra_config: dict[str, Any] | None = None,
    bootstrap_timeout: float = 90.0,
    progress: Progress | None = None,
) -> TorInstance:
    """Launch a dedicated tor for the crawl and return once it has bootstrapped to 100%."""
    binary = tor_binary(binary)
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="dnm-tor-"))
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_dir.chmod(0o700)
    socks_port = socks_port or free_port()
    control_port = control_port or free_port()
    config: dict[str, Any] = {
        "DataDirectory": str(data_dir),
        # Isolation by SOCKS credentials is what gives each market and account its own circuits;
        # KeepAlive keeps an idle identity's circuit instead of rebuilding it.
        "SocksPort": f"127.0.0.1:{socks_port} IsolateSOCKSAuth KeepAliveIsolateSOCKSAuth ExtendedErrors",
        "ControlPort": f"127.0.0.1:{control_port}",
        "CookieAuthentication": "1",
        "AvoidDiskWrites": "1",
        "PidFile": str(data_dir / "tor.pid"),
        "ClientUseIPv6": "0",
        "Log": ["notice stdout", f"notice file {data_dir / 'notice.log'}"],
        **(extra_config or {}),
    }
    torrc = data_dir / "torrc"
    torrc.write_text(render_torrc(config))
    process = _launch(binary, torrc, bootstrap_timeout, progress)
    instance = TorInstance(
        socks_port=socks_port,
        control_port=control_port,
        version="",
        launched=True,
        data_dir=data_dir,
        binary=binary,
        process=process,
        bootstrap_timeout=bootstrap_timeout,
    )
    with instance.controller() as controller:
        instance.version = str(controller.get_version()).split(" ")[0]
    return instance


def attach_tor(socks_port: int, control_port: int, *, timeout: float = 30.0) -> TorInstance:
    """Use a tor that is already running (the system tor, or one started by hand)."""
    instance = TorInstance(socks_port=socks_port, control_port=control_port, version="", launched=False)
    with instance.controller() as controller:
        instance.version = str(controller.get_version()).split(" ")[0]
        _wait_until(
            lambda: "PROGRESS=100" in controller.get_info("status/bootstrap-phase", ""),
            timeout,
            f"tor on control port {control_port} to finish bootstrapping",
        )
    return instance


def _launch(binary: str, torrc: Path, timeout: float, progress: Progress | None) -> subprocess.Popen[bytes]:
    """Start tor on a torrc and wait for "Bootstrapped 100%" on its stdout.

    Written here rather than with stem.process.launch_tor_with_config because stem's timeout uses
    SIGALRM, which works only in the main thread, and a tor restarted mid-crawl is launched from a
    worker thread. A stalled tor is killed at the deadline and its last log lines are reported.
    """
    process = subprocess.Popen(
        [binary, "-f", str(torrc), "--ignore-missing-torrc"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            lines.put(raw.decode("utf-8", "replace").rstrip())
        lines.put(None)

    threading.Thread(target=read, daemon=True, name="tor-stdout").start()
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        remaining = deadline - time.monotonic()
        try:
            line = lines.get(timeout=max(remaining, 0.01)) if remaining > 0 else None
        except queue.Empty:
            line = None
        if line is None:
            exited = process.poll() is not None
            process.kill()
            process.wait(timeout=5)
            why = (
                f"tor exited with status {process.returncode}"
                if exited
                else f"tor did not bootstrap within {timeout:.0f} s"
            )
            raise TorBootstrapError(f"{why}; last output:\n  " + "\n  ".join(seen[-8:]))
        seen.append(line)
        if "Bootstrapped " in line:
            percent = line.split("Bootstrapped ", 1)[1].split("%", 1)[0]
            logger.info("tor: %s", line.split("] ", 1)[-1])
            if progress is not None:
                progress(int(percent) if percent.isdigit() else 0, line)
            if percent == "100":
                return process


def _wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (stem.ControllerError, TorControlError):
            pass
        time.sleep(0.5)
    raise TorBootstrapError(f"gave up waiting {timeout:.0f} s for {what}")


def _kill_pid_file(pid_file: Path) -> None:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def tor_for_crawl(settings: Any, progress: Progress | None = None) -> TorInstance:
    """The Tor a crawl will use, ready: attached (`DNM_TOR_MODE=attach`) or launched for it.

    A launched tor gets `DNM_TOR_EXTRA_CONFIG` on top of the defaults (e.g. a private network's
    TestingTorNetwork and DirAuthority lines) and its data directory from `DNM_TOR_DATA_DIR`.
    """
    timeout = settings.getfloat("DNM_TOR_BOOTSTRAP_TIMEOUT", 90.0)
    mode = settings.get("DNM_TOR_MODE", "launch")
    if mode == "attach":
        socks, control = settings.getint("DNM_TOR_SOCKS_PORT"), settings.getint("DNM_TOR_CONTROL_PORT")
        if not socks or not control:
            raise TorControlError("DNM_TOR_MODE=attach needs DNM_TOR_SOCKS_PORT and DNM_TOR_CONTROL_PORT")
        return attach_tor(socks, control, timeout=timeout)
    if mode != "launch":
        raise TorControlError(f"DNM_TOR_MODE must be 'launch' or 'attach', not {mode!r}")
    data_dir = settings.get("DNM_TOR_DATA_DIR")
    return launch_tor(
        binary=settings.get("DNM_TOR_BINARY"),
        data_dir=Path(data_dir) if data_dir else None,
        extra_config=settings.getdict("DNM_TOR_EXTRA_CONFIG"),
        bootstrap_timeout=timeout,
        progress=progress,
    )
