# The compendium's entry points. `make setup && make test` is all a fresh machine needs.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
BENCH ?=
# torch build: cpu (default: the CPU wheel from PyTorch's index, ~200 MB) or cuda (PyPI's default Linux wheel,
# built with CUDA; several GB). `make setup TORCH=cuda` on a GPU machine.
TORCH ?= cpu
ifeq ($(TORCH),cuda)
TORCH_PIN := torch==2.13.0
TORCH_INDEX :=
else ifeq ($(TORCH),cpu)
TORCH_PIN := torch==2.13.0+cpu
TORCH_INDEX := --extra-index-url https://download.pytorch.org/whl/cpu --timeout 20 --retries 1
else
$(error TORCH must be cpu or cuda, not '$(TORCH)')
endif
# JupyterLab: as root it needs --allow-root (containers often run as root); LAB_ARGS adds options
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
LAB_ARGS ?=
# The sweep (`make all`): parallel runs and threads per run on this machine (default: one run per core,
# 1 thread each), or every run as a task on a Dask cluster; ONLY/PROPERTIES/SEEDS narrow it down.
JOBS ?=
THREADS ?=
DASK_SCHEDULER ?=
ONLY ?=
PROPERTIES ?=
SEEDS ?=
SWEEP_ARGS ?=
# BOOK=1: `make all` ends with `make book` (the profile's executed chapters as a static HTML site)
BOOK ?=
NB_OUT := results/notebooks
PAPERMILL := $(PY) -m papermill --cwd notebooks --progress-bar

.PHONY: setup test unit nbtest all sweep-plan archive data graphs lab bench bench-deps book clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-lock.txt pyproject.toml
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_INDEX) "$(TORCH_PIN)"
	grep -v '^torch==' requirements-lock.txt > $(VENV)/constraints.txt && echo "$(TORCH_PIN)" >> $(VENV)/constraints.txt
	$(PY) -m pip install -q -r requirements.txt -c $(VENV)/constraints.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -c "import torch, pymatgen.core, dscribe, mp_api, papermill, nbval, chgnet, sevenn; print('torch', torch.__version__)"
	touch $@

# Unit tests, then every notebook under nbval (default parameters = the smoke profile).
test: setup
	$(PY) -m pytest -q tests
	$(PY) -m pytest -q --nbval-lax --nbval-current-env -p no:cacheprovider notebooks

unit: setup
	$(PY) -m pytest -q tests

# One executed copy per notebook under results/notebooks/ (the property/seed sweep: issue 7).
data: setup
	mkdir -p $(NB_OUT)
	$(PAPERMILL) notebooks/01_fetch.ipynb $(NB_OUT)/01_fetch.ipynb -p profile $(PROFILE)

graphs: data
	$(PAPERMILL) notebooks/02_graphs.ipynb $(NB_OUT)/02_graphs.ipynb -p profile $(PROFILE)

SWEEP := $(PY) -m lib.sweep --profile $(PROFILE) $(if $(JOBS),--jobs $(JOBS)) $(if $(THREADS),--threads $(THREADS)) \
	$(if $(DASK_SCHEDULER),--dask-scheduler $(DASK_SCHEDULER)) $(if $(ONLY),--only $(ONLY)) \
	$(if $(PROPERTIES),--properties $(PROPERTIES)) $(if $(SEEDS),--seeds $(SEEDS)) $(SWEEP_ARGS)

# Every notebook run of the profile, in order (01 -> 02 -> 03/04/05 per property and seed -> 06 -> 07), one
# executed copy each under results/notebooks/; runs whose record and finished executed copy exist are skipped
# (an interrupted `make all` resumes; a record without its copy, as `make test`'s nbval leaves, runs again).
# `make all PROFILE=quick JOBS=2`, `make all DASK_SCHEDULER=tcp://host:8786`.
all: setup
	$(SWEEP)
	$(if $(BOOK),$(PY) -m book --profile $(PROFILE))

# What `make all` would run, and what it would skip, without running anything.
sweep-plan: setup
	$(SWEEP) --dry-run

# Copy the profile's finished run records into records/ (tracked: commit them), so that a later session or
# another machine restores them instead of training again (`make all` restores them itself). PARK=1 also parks
# its trainings (unfinished states, finished checkpoints: records/parked/), so that they resume or ship from a
# new checkout: `make archive PROFILE=long PARK=1`.
archive: setup
	$(PY) -m lib.records archive --profile $(PROFILE)
	$(if $(filter 1,$(PARK)),$(PY) -m lib.records park --profile $(PROFILE))
	$(PY) -m lib.cathodes.relax archive

# JupyterLab on the whole project (notebooks, results, figures), opening on notebooks/
lab: setup
	$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/notebooks $(LAB_ROOT) $(LAB_ARGS)

# Every benchmark script, or one: `make bench BENCH=graphs`. Each prints one JSON line per figure
# and appends it to results/bench.jsonl.
bench: setup
	$(PY) -m bench $(BENCH)

# Optional peers for `make bench BENCH=megnet` (matgl); adds packages, changes none of the lock.
bench-deps: setup
	$(PY) -m pip install -q -r requirements-bench.txt -c requirements-lock.txt

# The book: README.md, docs/ and one executed copy per chapter of the profile (formation energy, first seed)
# from results/notebooks/, built offline with mkdocs-material and mkdocs-jupyter (mkdocs.yml, book/) into
# results/book/site/ (open index.html; formulas by the site's own MathJax copy, no network). Runs nothing:
# `make all PROFILE=smoke && make book PROFILE=smoke`.
book: setup
	$(PY) -m book --profile $(PROFILE)

clean:
	rm -rf results data/processed data/graphs data/soap figures/*.png figures/*.pdf
