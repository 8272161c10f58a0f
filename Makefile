# The two commands of the README: `make demo` (the main job) and `make test` (the tests).
# Both set everything up on a fresh Debian machine: system packages (when root), a .venv, dependencies.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# gnupg: the PGP tests cross-check fingerprints with GnuPG. tor: the transport, the private Tor
# network of the demo and the tests (Debian's package brings tor-gencert too). chromium: the CAPTCHA
# solver page is tested in a real headless browser (Playwright drives Debian's binary, never a download).
# libpango: WeasyPrint renders the evidence report as PDF/A.
SYSTEM_PACKAGES := gnupg tor chromium libpango-1.0-0 libpangoft2-1.0-0
DEMO_DATABASE ?= sqlite:///var/demo/archive.sqlite

.PHONY: demo test lint fuzz bench bench-tor bench-archive bench-cluster system clean

demo: $(STAMP)
	$(BIN)/dnm demo run --database $(DEMO_DATABASE)

# The suite twice, as issue 5 asks: on SQLite (the default archive) and on PostgreSQL, every test archive a
# fresh database on the local server (DNM_TEST_DATABASE, tests/conftest.py; docs/postgresql.md). The two
# passes run side by side, the SQLite one as two processes, its Tor tests apart (tests/passes.py: mostly
# waiting on crawls and tors, they share the cores; one after the other they would not fit CI's half hour),
# each logging to var/test-logs/. Tests that open no archive, and the Tor-path tests, run in the SQLite pass
# only (tests/conftest.py). Under CI=true a PostgreSQL, Redis or tor that does not answer fails the tests
# that need it.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m tests.passes

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Every fuzz target for 100,000 inputs (docs/reliability.md, "Bad input"); FUZZ_RUNS=1000000 for longer.
FUZZ_RUNS ?= 100000
fuzz: $(STAMP)
	$(BIN)/python -m fuzz all --runs $(FUZZ_RUNS)

bench: $(STAMP)
	$(BIN)/python -m bench.pipeline

bench-tor: $(STAMP)
	$(BIN)/python -m bench.tor

# A synthetic year of nightly crawls into SQLite and PostgreSQL, then queried (bench/README.md).
bench-archive: $(STAMP)
	$(BIN)/python -m bench.archive_year

# One worker against two on a demo market answering after 300 ms, into PostgreSQL via Redis (bench/README.md).
bench-cluster: $(STAMP)
	$(BIN)/python -m bench.cluster

system:
	@missing=""; \
	for pkg in $(SYSTEM_PACKAGES); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	    case "$$missing" in *tor*) \
	      echo "stopping the system tor service the package may have started (the project runs its own)"; \
	      (systemctl disable --now tor || service tor stop) >/dev/null 2>&1 || true;; \
	    esac; \
	  else \
	    echo "missing system packages:$$missing (run as root, or: sudo apt-get install$$missing)"; \
	  fi; \
	fi

$(STAMP): pyproject.toml | system
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
