"""Reading a cProfile dump of a pipeline run: where the time goes, overall and in dnm-archive's own code."""

from __future__ import annotations

import pstats
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from bench import REPO

# Our code: everything in the repository except the virtualenv and the benchmark itself.
OWN_EXCLUDED = (".venv", "bench")


@dataclass(frozen=True)
class Hotspot:
    """One function's share of a profile."""

    function: str  # "path:line(name)", path relative to the repository or site-packages
    calls: int
    own_s: float  # time in the function itself
    cumulative_s: float  # time in the function and what it called

    def row(self) -> str:
        return f"{self.own_s:8.2f} {self.cumulative_s:8.2f} {self.calls:9d}  {self.function}"


STDLIB = sysconfig.get_paths()["stdlib"]


def _label(filename: str, line: int, name: str) -> str:
    """Shorten paths: relative to site-packages, the standard library or the repository."""
    path = filename
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif path.startswith(STDLIB):
        path = path[len(STDLIB) :].lstrip("/")
    elif path.startswith(str(REPO)):
        path = str(Path(path).relative_to(REPO))
    return f"{path}:{line}({name})"


def _is_own(filename: str) -> bool:
    path = Path(filename)
    if not path.is_absolute():  # built-ins ("~") and generated code ("<string>")
        return False
    try:
        relative = path.relative_to(REPO)
    except ValueError:
        return False
    return relative.parts[0] not in OWN_EXCLUDED


def hotspots(profile_file: Path) -> tuple[list[Hotspot], list[Hotspot]]:
    """All functions and our own functions, each list sorted by own time, then by cumulative time."""
    raw = pstats.Stats(str(profile_file)).stats  # type: ignore[attr-defined]
    every, own = [], []
    for (filename, line, name), (_primitive, calls, own_s, cumulative_s, _callers) in raw.items():
        spot = Hotspot(_label(filename, line, name), calls, own_s, cumulative_s)
        every.append(spot)
        if _is_own(filename):
            own.append(spot)
    every.sort(key=lambda s: s.own_s, reverse=True)
    # Entry points (the CLI, run_crawls) span the whole run and say nothing about where it goes.
    whole = max((s.cumulative_s for s in every), default=0.0)
    own = sorted((s for s in own if s.cumulative_s < whole / 2), key=lambda s: s.cumulative_s, reverse=True)
    return every, own


def report(profile_file: Path, top: int = 15) -> str:
    """A plain-text summary: the top functions by own time, and ours by cumulative time."""
    every, own = hotspots(profile_file)
    header = f"{'own s':>8} {'cum s':>8} {'calls':>9}  function"
    lines = [f"profile {profile_file}", "top functions by own time:", header]
    lines += [spot.row() for spot in every[:top]]
    lines += ["dnm-archive's functions by cumulative time:", header]
    lines += [spot.row() for spot in own[:top]]
    return "\n".join(lines)
