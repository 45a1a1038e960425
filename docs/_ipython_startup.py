"""IPython startup file for the notebook kernels of the docs build (copied there by ``docs/build.sh``)."""

import warnings

warnings.filterwarnings("ignore", message="IProgress not found")
