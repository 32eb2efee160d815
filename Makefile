# AutoAttend: `make search TASK=sst2` runs the main job, `make test` the tests.
# Both create the virtualenv .venv/ on first use (CPU torch pinned in requirements/cpu.txt).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TASK   ?= sst2
BUDGET ?= quick
ARGS   ?=
export AUTOATTEND_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),./data)

.PHONY: help install search retrain bench test test-full clean

help:
	@echo "make search TASK=sst2 [BUDGET=quick|paper|smoke] [ARGS='space.sharing=none ...']"
	@echo "make retrain TASK=sst5 ARCH=published_sst5 [BUDGET=quick]"
	@echo "make bench [ARGS='hardware=gpu space.sharing=none bench.reps=5']"
	@echo "make test        fast tests (< 10 min on 2 cores)"
	@echo "make test-full   also the slow end-to-end runs on the real SST files"

$(PY): requirements/cpu.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/cpu.txt
	touch $(PY)

install: $(PY)

search: $(PY)
	$(PY) -m src.search +task=$(TASK) budget=$(BUDGET) $(ARGS)

ARCH ?= published_sst5
retrain: $(PY)
	$(PY) -m src.retrain +task=$(TASK) arch=$(ARCH) budget=$(BUDGET) $(ARGS)

bench: $(PY)
	$(PY) -m src.bench $(ARGS)

test: $(PY)
	$(PY) -m pytest -q -m "not slow"

test-full: $(PY)
	$(PY) -m pytest -q

clean:
	rm -rf outputs multirun .cache .pytest_cache
