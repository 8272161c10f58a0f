"""One target under atheris in this process: `python -m fuzz.harness TARGET [libFuzzer flags] CORPUS...`.

libFuzzer ends the process when it is done (exit 0) or at the first crash (an uncaught exception: the
input is written to -artifact_prefix and the exit status is non-zero), which is why `python -m fuzz`
runs each target as a child process. The project is imported inside `instrument_imports`, so coverage
of `dnm` and `pipelines` guides the mutations.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["dnm", "pipelines"]):
    from fuzz.targets import TARGETS, profiles


def main() -> None:
    name, flags = sys.argv[1], sys.argv[2:]
    target = TARGETS[name]
    profiles()  # load the profiles once, before the clock of the first input starts
    atheris.Setup([sys.argv[0], *flags], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
