# difflab: the two commands are `make demo` and `make test`; both set everything up on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMPS := .stamps
DOMAINS := audio vision text video pointcloud timeseries robotics
PACKAGES := core $(DOMAINS)
PYPROJECTS := pyproject.toml $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
PYTEST_ARGS ?=
# test files run in parallel, one worker per core (each test keeps its module's fixtures: --dist loadfile)
PYTEST_WORKERS ?= auto

.PHONY: help install system demo test lint $(addprefix demo-,$(PACKAGES)) $(addprefix test-,$(PACKAGES)) \
        $(addprefix bench-,$(PACKAGES)) $(addprefix isolated-,$(PACKAGES))
# the per-package targets are static pattern rules: make searches no implicit (%) rule for a phony target

help:
	@echo "make demo          set up, then run every domain's demo on its offline default data"
	@echo "make test          set up, then run the whole test suite"
	@echo "make install       set up only: system packages, .venv, every package editable + test tools"
	@echo "make demo-<pkg>    one package's demo      (pkg: $(PACKAGES))"
	@echo "make test-<pkg>    one package's tests"
	@echo "make bench-<pkg>   one package's benchmark (benchmarks/<pkg>.py)"
	@echo "make isolated-<pkg> fresh venv with only core + <pkg>, then its tests"

$(STAMPS)/system: scripts/install-system-deps.sh
	@mkdir -p $(STAMPS)
	bash scripts/install-system-deps.sh
	@touch $@

$(STAMPS)/venv: $(STAMPS)/system $(PYPROJECTS) constraints.txt
	@mkdir -p $(STAMPS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade 'pip>=25.1'
	$(PIP) install -q -c constraints.txt -e 'core[lightning,test]' $(foreach p,$(DOMAINS),-e '$(p)[test]') --group dev
	# test-only oracle: k-diffusion's sampling loops (its own requirements are for training; the loops need torchsde)
	$(PIP) install -q -c constraints.txt --no-deps k-diffusion torchsde torchdiffeq trampoline
	@touch $@

install: $(STAMPS)/venv

system: $(STAMPS)/system

demo: install
	$(PY) scripts/demo_all.py

test: install
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check core $(DOMAINS) tests benchmarks scripts
	$(VENV)/bin/lint-imports

$(addprefix demo-,$(PACKAGES)): demo-%: install
	$(VENV)/bin/difflab-$* demo

$(addprefix test-,$(PACKAGES)): test-%: install
	$(PY) -m pytest tests/$* $(PYTEST_ARGS)

$(addprefix bench-,$(PACKAGES)): bench-%: install
	$(PY) benchmarks/$*.py

$(addprefix isolated-,$(PACKAGES)): isolated-%: $(STAMPS)/system
	bash scripts/check-isolated-install.sh $*
