# The two commands a newcomer needs: `make study` (the main job) and `make test`.
# Both create or refresh the local virtual environment from pyproject.toml first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: study test lint bench venv

venv: $(VENV)/.installed

# metaworld is an optional extra for users; development installs it so its tests run
$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,metaworld]"
	touch $@

# Until the study (issue 7) lands, the closest real end-to-end job: DoPr and its baselines on the
# two policy networks the toolkit trains, step-time ratios measured side by side.
study: venv
	$(PY) bench/optim_overhead.py

test: venv
	$(PY) -m pytest

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: venv
	$(PY) bench/optim_overhead.py
	$(PY) bench/data_throughput.py
	$(PY) bench/env_speed.py
	$(PY) bench/train_throughput.py
	$(PY) bench/eval_speed.py
