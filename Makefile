# One command each: `make demo` (the main job), `make test` (the whole suite), `make docs` (the site, notebooks
# executed, warnings as errors). Each builds its own venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# ESA's EOPF package pins its own xarray, zarr and dask: it lives in an environment of its own, used by the tests that
# convert SAFE products with ESA's converter (they skip, saying so, when it could not be installed)
EOPF_VENV := .eopf-venv
DATA_DIR := $(abspath ../shared/data)
# Use the shared sample-data mirror when it is there (pooch fetches the public files otherwise).
export XWVNET_DATA_DIR ?= $(if $(wildcard $(DATA_DIR)),$(DATA_DIR),)

.PHONY: install demo test docs lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test]"
	# timm is the reference the ViT tests compare with; it requires torchvision, whose wheels pull another torch
	$(PY) -m pip install --quiet --no-deps "timm>=1.0"
	touch $@

install: $(VENV)/.installed

$(EOPF_VENV)/.installed:
	-$(PYTHON) -m venv $(EOPF_VENV) && $(EOPF_VENV)/bin/python -m pip install --quiet "eopf==2.8.1" defusedxml \
		&& touch $@

demo: install
	$(PY) -m xwvnet.cli demo --out demo-output

test: install $(EOPF_VENV)/.installed
	$(PY) -m ruff check xwvnet tests benchmarks examples
	$(PY) -m pytest -n 2 --dist loadfile -q tests

docs: install
	$(PY) -m pip install --quiet -e ".[docs]"
	PYTHON=$(PY) docs/build.sh

clean:
	rm -rf $(VENV) $(EOPF_VENV) demo-output
