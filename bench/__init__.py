"""The throughput benchmark of dnm-archive, run on demand (`python -m bench.pipeline`), never in CI."""
