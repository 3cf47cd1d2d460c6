# The two commands: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BENCH_DATA ?= ../shared/bench/public
REAL_DATA ?= ../shared/bench/real

.PHONY: install run test lint fuzz bench bench-real bench-scale bench-scaling bench-restart \
	bench-catalog bench-photo-size bench-reindex loadtest chaos screenshots clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Locust only for the load test, so that `make test` installs no more than it needs.
$(VENV)/.installed-load: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[dev,load]'
	touch $@

run: install
	$(BIN)/cloudreco run

# ruff format covers the modules formatted so far; the rest of the tree joins as it is touched.
FORMATTED := matcher/recognition benchmarks/fit_pca.py benchmarks/generated.py benchmarks/real.py

lint: install
	$(BIN)/ruff check cloudreco gateway matcher shared tests benchmarks
	$(BIN)/ruff format --check $(FORMATTED)
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# The fuzzers `make test` runs briefly (schemathesis against the stack, forms, field checks,
# images), each for FUZZ_SECONDS: five of them, about 13 minutes by default. Each prints the
# number of cases it ran.
FUZZ_SECONDS ?= 150
fuzz: install
	CLOUDRECO_FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/pytest -m fuzz --timeout 0

bench: install
	$(BIN)/python -m benchmarks.recognition --data $(BENCH_DATA)

# The real photos (../shared/bench/real, read in place: never copied) through the HTTP API of a
# fresh stack, and the exhaustive SIFT reference on the same photos: about 10 minutes.
bench-real: install
	$(BIN)/python -m benchmarks.real --data $(REAL_DATA)

bench-scale: install
	$(BIN)/python -m benchmarks.recognition --data $(BENCH_DATA) --distractors 10000 --reference-sample 0

bench-scaling: install
	$(BIN)/python -m benchmarks.scaling --data $(BENCH_DATA) --sizes 1000 10000 50000

# A replica of a 100,000-image shard restarted: the first start rebuilds (long), then snapshots.
bench-restart: install
	$(BIN)/python -m benchmarks.restart --data $(BENCH_DATA) --images 100000 --write

# GetImages / Statistics at 100,000 images and a year of history (about 5 minutes), then
# 20,000 AddImage into one channel, timed per block of 1,000 (long: the matcher extracts each).
bench-catalog: install
	$(BIN)/python -m benchmarks.catalog --history --write
	$(BIN)/python -m benchmarks.catalog --data $(BENCH_DATA) --import 20000 --write

# What a photo's size costs: 640x480, 1024 px and 40 MP photos, in-process and over HTTP on a
# fresh stack (memory and time); writes its table into BENCHMARKS.md. Needs ../shared/bench/real.
bench-photo-size: install
	$(BIN)/python -m benchmarks.photo_size cost --data $(BENCH_DATA) --write

# FindImage from one client before and during `cloudreco reindex` of the public catalog on a
# fresh stack (about 6 minutes); writes its table into BENCHMARKS.md.
bench-reindex: install
	$(BIN)/python -m benchmarks.reindex --data $(BENCH_DATA) --write

# Locust against a fresh local stack at rising user counts, with 1 and 2 replicas per shard.
# LOADTEST_ARGS, e.g. '--users 1 4 --step-seconds 10 --replicas 1', narrows the run.
loadtest: $(VENV)/.installed-load
	$(BIN)/python -m benchmarks.loadtest --data $(BENCH_DATA) $(LOADTEST_ARGS)

# A fresh stack (1 shard x 2 replicas) under load while a replica, Redis, Postgres and the
# gateway are SIGKILLed in turn; appends its table to BENCHMARKS.md (about 5 minutes).
chaos: install
	$(BIN)/python -m benchmarks.chaos --data $(BENCH_DATA) --write BENCHMARKS.md

# docs/images/scan.png: /scan in Chromium, a fake camera showing a benchmark photo, saved by
# its browser test (tests/test_pages.py); docs/images/console.png from a fresh local stack
# (tests/screenshots.py).
screenshots: install
	CLOUDRECO_SCREENSHOTS=docs/images $(BIN)/pytest -q -p no:cacheprovider \
		tests/test_pages.py -k outlines_the_target
	$(BIN)/python -m tests.screenshots

clean:
	rm -rf $(VENV) .cloudreco .pytest_cache .mypy_cache .ruff_cache
