# impactlab — set-up, tests, benchmarks.  Every target builds .venv from the pinned pyproject first.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export IMPACTLAB_DATA ?= $(abspath ../shared/data)
export NUMBA_CACHE_DIR ?= $(abspath $(VENV)/numba-cache)

.PHONY: venv demo test test-slow bench lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: venv
	$(VENV)/bin/impactlab demo

test: venv
	$(PY) -m pytest -n 2 -m "not slow and not benchmark" -q

test-slow: venv
	$(PY) -m pytest -m "slow" -q || [ $$? -eq 5 ]  # exit 5: no slow cases yet

bench: venv
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) -m pip install --quiet --no-deps almgren-chriss==1.1.0  # its metadata pins numpy<2; it runs on 2.x
	$(PY) benchmarks/run.py --out BENCHMARKS.md $(if $(ONLY),--only $(ONLY))

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy src

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
