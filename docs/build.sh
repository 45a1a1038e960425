#!/usr/bin/env bash
# Build the documentation site into docs/_build/html, executing every notebook, with warnings as errors.
#
#   docs/build.sh                       # full build (notebooks run, results cached in docs/_build/.jupyter_cache)
#   XWVNET_DOCS_EXECUTE=off docs/build.sh   # prose and API only, notebooks rendered without running
#   PYTHON=python3 docs/build.sh        # another interpreter (default: the checkout's .venv)
#
# Needs the `docs` extra (sphinx, myst-nb, numpydoc, sphinx-autosummary-accessors, pydata-sphinx-theme, ipykernel,
# bokeh). Offline: the notebooks read the sample-data mirror in $XWVNET_DATA_DIR (default: ../shared/data beside
# the checkout, as `make` uses) and synthetic imagettes; nothing is downloaded when the mirror is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
if [[ -z "${XWVNET_DATA_DIR:-}" && -d ../shared/data ]]; then
    XWVNET_DATA_DIR=$(cd ../shared/data && pwd)
fi
export XWVNET_DATA_DIR=${XWVNET_DATA_DIR:-}
export PYDEVD_DISABLE_FILE_VALIDATION=1
# The notebook kernels start with docs/_ipython_startup.py: tqdm.auto warns once per kernel that ipywidgets is
# absent (the bars print as text, which is what the pages show), and that warning is not part of any example.
export IPYTHONDIR="$PWD/docs/_build/ipython"
mkdir -p "$IPYTHONDIR/profile_default/startup"
cp docs/_ipython_startup.py "$IPYTHONDIR/profile_default/startup/00-xwvnet-docs.py"
# Generated API pages are rebuilt from the docstrings every time, so a removed function leaves no stale page.
rm -rf docs/generated
exec "$PYTHON" -m sphinx -W --keep-going -b html docs docs/_build/html "$@"
