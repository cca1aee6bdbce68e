# The two commands a newcomer needs: `make study` (the main job) and `make test`.
# Both create or refresh the local virtual environment from pyproject.toml first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: study results test lint bench venv interop

venv: $(VENV)/.installed

# metaworld, pusht, robosuite, formats and cluster are optional extras for users; development installs them so
# their tests run
$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,metaworld,pusht,robosuite,formats,cluster]"
	touch $@

# The main job: the default study (dopr_robot/study/presets/default.toml), resumable.
study: venv
	$(VENV)/bin/dopr-robot study --preset default

# Rewrite docs/results.md, docs/results-long.md, docs/results-conditioning.md,
# docs/results-horizon.md and docs/results-benchmarks.md (the generated results the README
# links) from the default, long, conditioning, horizon and benchmarks-cpu studies (resumable;
# about 20, 28, 60, 60 and 60 minutes on 2 cores; benchmarks-cpu needs the robosuite extra).
results: venv
	$(VENV)/bin/dopr-robot study --preset default --readme docs/results.md
	$(VENV)/bin/dopr-robot study --preset long --readme docs/results-long.md
	$(VENV)/bin/dopr-robot study --preset conditioning --readme docs/results-conditioning.md
	$(VENV)/bin/dopr-robot study --preset horizon --readme docs/results-horizon.md
	$(VENV)/bin/dopr-robot study --preset benchmarks-cpu --readme docs/results-benchmarks.md

test: venv
	$(PY) -m pytest

# What the toolkit writes, read by the real clients (LeRobot 0.6.1 on Python 3.12, diffusion_policy's
# zarr 2.12 pins on Python 3.9), and LeRobot's writer read by the toolkit. Not part of `make test`:
# it installs those packages into .interop/ (once). DIFFUSION_POLICY=<checkout> uses its own code.
interop: venv
	bash interop/run.sh

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: venv
	$(PY) bench/optim_overhead.py
	$(PY) bench/data_throughput.py
	$(PY) bench/env_speed.py
	$(PY) bench/train_throughput.py
	$(PY) bench/eval_speed.py
	$(PY) bench/eval_memory.py
	$(PY) bench/study_workers.py
