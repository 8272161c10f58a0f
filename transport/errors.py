"""Typed errors of the Tor transport, each saying its cause and what to do about it."""

from __future__ import annotations


class TorError(RuntimeError):
    """Base class: something about Tor stops the crawl from starting or going on."""


class TorNotInstalled(TorError):
    """No tor binary to launch."""

    def __init__(self, binary: str) -> None:
        super().__init__(
            f"tor not found ({binary!r} is not on PATH): install Debian's tor package "
            "(apt-get install tor) or set DNM_TOR_BINARY to the tor binary"
        )


class TorBootstrapError(TorError):
    """A launched tor did not finish bootstrapping in time (no network, wrong DirAuthority, ...)."""


class TorControlError(TorError):
    """Tor's control port cannot be reached or refused us."""
