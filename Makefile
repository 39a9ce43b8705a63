# The front door: `make run` and `make test` set up what is missing, then work.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install mlserver-venv browser run test test-unit bench bench-load lint format clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## Install the project and its pinned dependencies into .venv

run: install  ## Start Dagster (UI :3000) and the API (:8000) on loopback
	$(PY) -m stack

mlserver-venv:  ## MLServer in its own virtualenv (.venv-mlserver), for the model tests
	bash testkit/mlserver_venv.sh >/dev/null

browser:  ## Debian's Chromium for the browser tests (no browser download)
	bash tests/e2e/install_browser.sh

test: install mlserver-venv browser  ## Install and run every test
	$(PY) -m pytest -q

test-unit: install
	$(PY) -m pytest -q tests/unit

bench: install  ## Benchmarks: each prints its figures beside a baseline
	$(PY) -m bench bench_core bench_resize bench_import bench_inference bench_run_status

bench-load: install  ## Load benchmarks (tens of minutes on 2 cores)
	$(PY) -m bench bench_load bench_submissions

lint: install
	$(VENV)/bin/ruff check api cli orchestrator stack testkit tests bench
	$(VENV)/bin/ruff format --check api cli orchestrator stack testkit tests bench
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix api cli orchestrator stack testkit tests bench
	$(VENV)/bin/ruff format api cli orchestrator stack testkit tests bench

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
