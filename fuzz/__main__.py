"""`python -m fuzz TARGET|all --runs N`: run fuzz targets under atheris and report inputs, crashes and time.

Each target runs in its own process (`fuzz.harness`), seeded from `fuzz.corpus` (written afresh under
<workdir>/seeds) plus the corpus earlier runs grew (<workdir>/corpus/<target>). A crashing input is
saved as <workdir>/crashes/<target>-crash-<sha1>; replay it with
`python -m fuzz.harness TARGET <that file>`. The exit status is 1 when any target crashed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DONE = re.compile(r"Done (\d+) runs in (\d+) second")


@dataclass
class Result:
    """One target's run: how many inputs, whether it crashed, how long it took."""

    target: str
    runs: int
    crashes: int
    seconds: float
    log: str


def run_target(name: str, runs: int, workdir: Path, seeds: Path, *, seed: int, timeout: int) -> Result:
    """Fuzz one target for `runs` inputs in a child process; its libFuzzer log goes to <workdir>/logs."""
    from fuzz.targets import DEFAULT_MAX_LEN, MAX_LEN

    corpus, crashes, logs = (workdir / "corpus" / name, workdir / "crashes", workdir / "logs")
    for folder in (corpus, crashes, logs):
        folder.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    command = [
        sys.executable, "-m", "fuzz.harness", name,
        f"-runs={runs}", f"-seed={seed}", f"-timeout={timeout}",
        f"-max_len={MAX_LEN.get(name, DEFAULT_MAX_LEN)}",
        f"-artifact_prefix={crashes}/{name}-", "-print_final_stats=1",
        str(corpus), str(seeds / name),
    ]  # fmt: skip
    started = time.monotonic()
    with log.open("wb") as out:
        status = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    seconds = time.monotonic() - started
    done = DONE.findall(log.read_text(errors="replace"))
    return Result(name, int(done[-1][0]) if done else 0, 0 if status == 0 else 1, round(seconds, 1), str(log))


def main(argv: list[str] | None = None) -> int:
    from fuzz.corpus import write_seeds
    from fuzz.targets import TARGETS

    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=[*TARGETS, "all"])
    parser.add_argument("--runs", type=int, default=100_000, help="inputs per target (default 100000)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "fuzz", help="default var/fuzz")
    parser.add_argument("--seed", type=int, default=1, help="libFuzzer's random seed (default 1)")
    parser.add_argument("--timeout", type=int, default=20, help="seconds one input may take (a hang)")
    args = parser.parse_args(argv)
    names = list(TARGETS) if args.target == "all" else [args.target]
    seeds = args.workdir / "seeds"
    write_seeds(seeds, names)
    results = []
    print(f"{'target':<20} {'inputs':>9} {'crashes':>8} {'seconds':>8} {'inputs/s':>9}", flush=True)
    for name in names:
        result = run_target(name, args.runs, args.workdir, seeds, seed=args.seed, timeout=args.timeout)
        results.append(result)
        rate = result.runs / result.seconds if result.seconds else 0
        print(
            f"{name:<20} {result.runs:>9,} {result.crashes:>8} {result.seconds:>8.1f} {rate:>9,.0f}"
            + (f"  CRASH: see {result.log}" if result.crashes else ""),
            flush=True,
        )
    (args.workdir / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    incomplete = [r.target for r in results if not r.crashes and r.runs < args.runs]
    if incomplete:
        print(f"fewer inputs than asked for: {', '.join(incomplete)}", file=sys.stderr)
    return 1 if any(r.crashes for r in results) or incomplete else 0


if __name__ == "__main__":
    sys.exit(main())
