# AutoAttend: `make search TASK=sst2` runs the main job, `make test` the tests.
# Both create the virtualenv .venv/ on first use (CPU torch pinned in requirements/cpu.txt).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# make cannot name a file whose path holds a space (the virtualenv's interpreter is a target)
ifneq ($(words $(VENV)),1)
ifneq ($(VENV),)
$(shell echo "error: VENV=$(VENV): make cannot use a folder whose path holds a space; give one without" >&2)
$(error stopped)
endif
endif
# a value as one shell word, as typed (spaces, quotes; a $ is written $$ on make's command line)
shell_word = '$(subst ','\'',$(1))'
TASK   ?= sst2
BUDGET ?= quick
ARGS   ?=
# malloc preloaded by search/retrain/bench: auto (mimalloc from requirements/cpu.txt, else the
# system's jemalloc), mimalloc, jemalloc, tcmalloc, system, or a library path (src/utils/allocator.py)
ALLOCATOR ?= auto
# mimalloc returns freed memory to the system after this many ms; its default (10) made the retrain
# step 35-45 % slower than glibc (pages faulted in again every step), 10 s does not (docs/performance.md)
export MIMALLOC_PURGE_DELAY ?= 10000
# (the choice goes to the command too: with LD_PRELOAD empty, its entry point would preload auto's)
ALLOCATOR_ENV = AUTOATTEND_ALLOCATOR=$(call shell_word,$(ALLOCATOR))
PRELOAD = lib=$$($(ALLOCATOR_ENV) $(PY) -m src.utils.allocator) && $(ALLOCATOR_ENV) LD_PRELOAD="$$lib$${LD_PRELOAD:+:$$LD_PRELOAD}"
export AUTOATTEND_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),./data)

# Reproduction: `make reproduce EXP=<name>` runs experiments/conf/experiment/<name>.yaml with the
# entry point that config names (experiment.entry), as a sweep (-m) when it says multirun: true;
# `make experiments` lists them.
EXP    ?=
EXP_CFG = $(call shell_word,experiments/conf/experiment/$(EXP).yaml)
# read when reproduce's command is expanded (after its argument check), so `make -n` shows the command itself
EXP_ENTRY = $(shell sed -n 's/^  entry: *//p' $(EXP_CFG) 2>/dev/null)
EXP_MULTIRUN = $(shell grep -q '^  multirun: true' $(EXP_CFG) 2>/dev/null && echo -m)

.PHONY: help install install-locked lock search retrain retrain-args reproduce reproduce-args experiments report evaluate evaluate-args predict predict-args bench test test-full clean

help:
	@echo "make search TASK=sst2 [BUDGET=quick|paper|smoke] [ARGS='space.sharing=none ...']"
	@echo "make retrain TASK=sst5 ARCH=published_sst5 [BUDGET=quick]"
	@echo "make reproduce EXP=cora_default [ARGS=...]   (make experiments: the list)"
	@echo "make report [DIR=outputs/multirun/search/<time>] [ARGS='--csv runs.csv --over seed']   (no DIR: every run, in outputs/ or AUTOATTEND_OUTPUT_DIR)"
	@echo "make evaluate DIR=<run dir>   (reload its retrained models, check their recorded scores)"
	@echo "make predict DIR=<text run dir> FILE=<texts, one per line> [ARGS=--jsonl]   (classify new text)"
	@echo "make bench [ARGS='hardware=gpu space.sharing=none bench.reps=5']"
	@echo "  (search/retrain/bench preload mimalloc; ALLOCATOR=jemalloc|system|/path/lib.so to change)"
	@echo "make install-locked [VENV=.venv-locked]   (a new virtualenv with the exact versions of requirements/cpu-lock.txt)"
	@echo "make lock        rewrite requirements/cpu-lock.txt from the packages installed in .venv"
	@echo "make install     create the virtualenv (.venv/, or VENV=<dir>) with requirements/cpu.txt"
	@echo "make test        fast tests, in parallel processes (about 6-10 min on 2 cores; TEST_WORKERS=0: one process; ARGS: pytest's options)"
	@echo "make test-full   every test, also those marked slow (docs/testing.md)"
	@echo "make clean       delete outputs/ (every run in it), multirun/ and .cache/ (the data caches)"
	@echo "  (VENV=<dir>: the virtualenv to create and use, default .venv)"

# The exact versions the test suite last passed with (requirements/cpu-lock.txt, src/utils/lock.py):
# install-locked builds a new virtualenv from them alone (pip --no-deps, so nothing unpinned comes
# in; pip check then verifies that nothing is missing) and marks it, so that it is brought up to date
# from the lock, never from requirements/cpu.txt; lock rewrites the file from $(VENV).
LOCK = requirements/cpu-lock.txt
LOCKED_MARK = $(VENV)/autoattend-locked
INSTALL_LOCKED = $(PY) -m pip install --quiet --no-deps -r $(LOCK) && \
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . && $(PY) -m pip check

$(PY): requirements/cpu.txt pyproject.toml $(if $(wildcard $(LOCKED_MARK)),$(LOCK))
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	if test -e $(LOCKED_MARK); then $(INSTALL_LOCKED); else $(PY) -m pip install --quiet -r requirements/cpu.txt; fi
	touch $(PY)

install: $(PY)

install-locked:
	@test -n "$(VENV)" || { echo "error: make install-locked needs VENV=<new dir> (the virtualenv to create)" >&2; exit 2; }
	@test ! -e $(VENV) || { echo "error: $(VENV) exists; make install-locked builds a new virtualenv: remove it or give VENV=<new dir>" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(INSTALL_LOCKED)
	echo "installed from $(LOCK) by make install-locked: brought up to date from it" > $(LOCKED_MARK)
	touch $(PY)

lock: $(PY)
	$(PY) -m src.utils.lock --out $(LOCK)

search: $(PY)
	$(PRELOAD) $(PY) -m src.search +task=$(TASK) budget=$(BUDGET) $(ARGS)

ARCH ?=
retrain: retrain-args $(PY)
	$(PRELOAD) $(PY) -m src.retrain +task=$(TASK) $(call shell_word,arch="$(subst ",\",$(ARCH))") budget=$(BUDGET) $(ARGS)
retrain-args:
	@test -n $(call shell_word,$(ARCH)) || { echo "error: make retrain needs ARCH=<built-in name (published_sst5, gcn, gat), architecture file or search run directory>" >&2; exit 2; }

reproduce: reproduce-args $(PY)
	$(PRELOAD) $(PY) -m src.$(EXP_ENTRY) $(EXP_MULTIRUN) $(call shell_word,+experiment=$(EXP)) $(ARGS)

reproduce-args:
	@test -n $(call shell_word,$(EXP)) || { echo "error: make reproduce needs EXP=<name>; make experiments lists them" >&2; exit 2; }
	@test -f $(EXP_CFG) || { echo "error: no experiment "$(call shell_word,$(EXP))" ("$(EXP_CFG)" does not exist); make experiments lists them" >&2; exit 2; }

# the experiment configs `make experiments` lists, each with the first sentence of its header
# ("e.g.", "i.e.", "cf." and "vs." do not end a sentence), wrapped; a reader gone (| head) ends it
# quietly: the status of a loop whose writes met a closed pipe (141, SIGPIPE) is taken as success
EXP_DIR ?= experiments/conf/experiment
experiments:
	@test -n "$(wildcard $(EXP_DIR)/*.yaml)" || { echo "error: no experiment configs in $(EXP_DIR) (run make in the repository's folder, or make -C <it>)" >&2; exit 2; }
	@for f in $(EXP_DIR)/*.yaml; do \
		awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); t = t (t == "" ? "" : " ") $$0; \
			u = t; gsub(/e[.]g[.]/, "e_g_", u); gsub(/i[.]e[.]/, "i_e_", u); gsub(/(cf|vs)[.]/, "xx_", u); \
			if (match(u, /[.]( |$$)/)) {t = substr(t, 1, RSTART); exit}} END {print t}' $$f \
		| fold -s -w 76 | awk -v name="$$(basename $$f .yaml)" \
			'{sub(/ +$$/, ""); printf "%-24s %s\n", (NR == 1 ? name : ""), $$0}'; done; \
	status=$$?; test $$status -eq 0 -o $$status -eq 141

# a table of the runs at or under DIR (run directories, sweeps, outputs/): src/report.py
# (DIR unset: where the runs are written, $AUTOATTEND_OUTPUT_DIR or outputs/)
DIR ?=
report: $(PY)
	$(PY) -m src.report $(call shell_word,$(or $(DIR),$(AUTOATTEND_OUTPUT_DIR),outputs)) $(ARGS)

# the retrained models a run kept, reloaded and checked against its recorded scores: src/evaluate.py
# (the checks come first as prerequisites of their own, so a missing DIR is said before any install)
evaluate: evaluate-args $(PY)
	$(PY) -m src.evaluate $(call shell_word,$(DIR)) $(ARGS)
evaluate-args:
	@test -n $(call shell_word,$(DIR)) || { echo "error: make evaluate needs DIR=<a run directory>" >&2; exit 2; }

# new text classified by a text run's kept model (the best validation seed; ARGS=--ensemble): src/predict.py
predict: predict-args $(PY)
	$(PY) -m src.predict $(call shell_word,$(DIR)) --file $(call shell_word,$(FILE)) $(ARGS)
predict-args:
	@test -n $(call shell_word,$(DIR)) -a -n $(call shell_word,$(FILE)) || { echo "error: make predict needs DIR=<a text run directory> FILE=<texts, one per line>" >&2; exit 2; }

bench: $(PY)
	$(PRELOAD) $(PY) -m src.bench $(ARGS)

# tests run in parallel processes (pytest-xdist): one per core, at most TEST_WORKERS_MAX (each
# holds torch and may start a command-line run of ~1 GB); TEST_WORKERS=0 runs them in this process
TEST_WORKERS     ?= auto
TEST_WORKERS_MAX ?= 4
PYTEST = $(PY) -m pytest -q -n $(TEST_WORKERS) $(if $(filter 0,$(TEST_WORKERS)),,--maxprocesses $(TEST_WORKERS_MAX))

test: $(PY)
	$(PYTEST) -m "not slow" $(ARGS)

test-full: $(PY)
	$(PYTEST) $(ARGS)

clean:
	rm -rf outputs multirun .cache .pytest_cache
