# The front door: `make run` and `make test` set up what is missing, then work.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install redis mlserver-venv kserve-venv model-server browser run test test-unit bench bench-load lint format clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## Install the project and its pinned dependencies into .venv

run: install redis  ## Start Dagster (UI :3000) and the API (:8000) on loopback
	$(PY) -m stack

mlserver-venv:  ## MLServer in its own virtualenv (.venv-mlserver), for the model tests
	bash testkit/mlserver_venv.sh >/dev/null

kserve-venv:  ## KServe's model server in its own virtualenv (.venv-kserve), a second V2 peer
	bash testkit/kserve_venv.sh >/dev/null

model-server: install mlserver-venv  ## A demo V2 model server on 127.0.0.1:8080 (Ctrl-C stops it)
	$(PY) -m testkit.mlserver 8080

redis:  ## Debian's redis-server: the embedded stack's run queue (it starts its own, on loopback)
	bash stack/install_debian.sh redis-server redis-server

browser:  ## Debian's Chromium for the browser tests (no browser download)
	bash tests/e2e/install_browser.sh

test: install redis mlserver-venv kserve-venv browser  ## Install and run every test
	$(PY) -m pytest -q

test-unit: install
	$(PY) -m pytest -q tests/unit

bench: install redis  ## Benchmarks: each prints its figures beside a baseline
	$(PY) -m bench bench_core bench_resize bench_import bench_inference bench_run_status bench_vit bench_plugins bench_saved

bench-load: install redis  ## Load benchmarks (tens of minutes on 2 cores)
	$(PY) -m bench bench_load bench_submissions bench_turnaround bench_cache bench_results bench_events

lint: install
	$(VENV)/bin/ruff check api cli orchestrator stack workers testkit tests bench
	$(VENV)/bin/ruff format --check api cli orchestrator stack workers testkit tests bench
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix api cli orchestrator stack workers testkit tests bench
	$(VENV)/bin/ruff format api cli orchestrator stack workers testkit tests bench

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
