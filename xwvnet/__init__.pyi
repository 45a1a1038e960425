"""The public names of xwvnet, for editors and type checkers (SPEC 1): ``xwvnet/__init__.py`` loads them lazily."""

from . import datasets as datasets
from . import plot as plot
from . import synthetic as synthetic
from ._version import __version__ as __version__
from .archive import embed_store as embed_store
from .evaluation.curves import learning_curve as learning_curve
from .evaluation.table import evaluate as evaluate
from .export.geoparquet import read_geoparquet as read_geoparquet
from .export.geoparquet import to_geoparquet as to_geoparquet
from .heads import Head as Head
from .heads import fit_head as fit_head
from .inference import embed as embed
from .ingestion import add_labels as add_labels
from .ingestion import ingest as ingest
from .io.audit import status as status
from .io.audit import verify as verify
from .io.ocn import open_ocn as open_ocn
from .io.quicklook import open_quicklooks as open_quicklooks
from .io.safe import open_safe as open_safe
from .io.safe import safe_to_imagettes as safe_to_imagettes
from .io.store import history as history
from .io.store import open_store as open_store
from .io.store import open_stores as open_stores
from .io.store import to_store as to_store
from .joins.collocation import collocate as collocate
from .models.encoder import Encoder as Encoder
from .models.zoo import load_encoder as load_encoder
from .probe import Probe as Probe
from .probe import fit_probe as fit_probe
from .probe import predict as predict
from .retrieval import neighbors as neighbors
from .schema import validate as validate
from .training import train as train

__all__ = [
    "__version__",
    "validate",
    "open_quicklooks",
    "open_store",
    "open_stores",
    "history",
    "verify",
    "status",
    "ingest",
    "add_labels",
    "to_store",
    "open_ocn",
    "open_safe",
    "safe_to_imagettes",
    "Encoder",
    "load_encoder",
    "embed",
    "embed_store",
    "Probe",
    "fit_probe",
    "predict",
    "Head",
    "fit_head",
    "learning_curve",
    "evaluate",
    "neighbors",
    "collocate",
    "train",
    "to_geoparquet",
    "read_geoparquet",
]
