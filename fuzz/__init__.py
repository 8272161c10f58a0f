"""Fuzzing the code that reads what markets send: extraction, normalization, barrier classification.

`python -m fuzz TARGET --runs 100000` (or `all`) runs a target's atheris harness in its own process,
coverage-guided over `dnm` and `pipelines`, seeded with the demo market's real pages and hostile strings;
`fuzz.targets` holds the targets (plain functions of bytes, so tests can drive them without atheris) and
`fuzz.corpus` the seeds. This package imports nothing of the project at import time: the harness must
import `dnm` inside atheris's instrumentation, or coverage guidance sees none of it.
"""
