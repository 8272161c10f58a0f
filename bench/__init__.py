"""The throughput benchmark of dnm-archive, run on demand (`python -m bench.pipeline`), never in CI."""

from pathlib import Path

# The benchmark's subprocesses run here, so that `bench`, `dnm` and config/markets/ resolve.
REPO = Path(__file__).resolve().parents[1]
