"""The roots of every exception and warning xwvnet raises, so that one ``except`` (or one filter) catches them all.

Every exception xwvnet raises on purpose is an :class:`XWVNetError` *and* keeps a builtin parent (``ValueError``,
``TypeError``, ``OSError`` ...), so ``except ValueError:`` clauses written for the builtin still work; every xwvnet
warning class derives from :class:`XWVNetWarning` (a ``UserWarning``). The ``xwvnet`` command prints an
:class:`XWVNetError` as one line and exits 1.

Between the root and the classes raised sit seven families, one per kind of thing to fix. A family class has no
builtin parent of its own; catch it to handle a whole kind of error whatever its builtin parent:

========================== ===========================================================================================
Family                     What went wrong, and what to fix
========================== ===========================================================================================
:class:`UsageError`        The call itself: an argument's value or type, options that contradict each other, a name
                           that is not known. Fix the call.
:class:`InputError`        The data given: a Dataset or array without the variables, dimensions, dtype or values
                           needed; a file or product that is malformed, damaged, refused as unsafe or absent. Fix or
                           replace the input.
:class:`OutputError`       The destination: something is already there, it is a file where a folder is needed, or it
                           is a kind of location the writer does not write to. Choose another, or ``overwrite=True``.
:class:`StoreError`        An xwvnet store (imagettes, embeddings) or retrieval index holds something other than the
                           call expects (embeddings made differently, other imagettes, a stale index), cannot be
                           reached, is damaged, or changed during a write.
:class:`ModelError`        Encoders, their weights, training checkpoints and probes: a file that is damaged or of
                           another model, or a model that does not fit the data or settings given.
:class:`UnavailableError`  Something the call needs is not on this machine: an optional dependency, a GPU, a local
                           cluster, a sample file or weights that cannot be downloaded. Install, connect or choose
                           another device.
:class:`RunError`          A computation started and failed: chunks of an embedding run, a training whose loss
                           diverged. The message says what was kept and how to resume.
========================== ===========================================================================================

The classes most calls raise are defined here (:class:`InvalidArgumentError`, :class:`InvalidDataError`,
:class:`InvalidFileError` ..., and the store errors and warnings of :mod:`xwvnet.io.store`, which imports them);
errors specific to one module live there and derive from a family (for example
:class:`~xwvnet.io.quicklook.LabelsFileError` is an :class:`InvalidFileError`,
:class:`~xwvnet.models.weights.WeightsIntegrityError` a :class:`ModelError`). ``KeyboardInterrupt`` subclasses
(:class:`~xwvnet.archive.EmbedInterrupted`) are interruptions, not errors, and stay outside :class:`XWVNetError`.

Examples
--------
>>> from xwvnet.errors import InvalidArgumentError, UsageError, XWVNetError
>>> err = InvalidArgumentError("chunks must be positive, got 0.")
>>> isinstance(err, XWVNetError), isinstance(err, UsageError), isinstance(err, ValueError)
(True, True, True)
>>> import warnings
>>> from xwvnet.errors import XWVNetWarning
>>> warnings.simplefilter("error", XWVNetWarning)  # doctest: +SKIP
"""

from __future__ import annotations


class XWVNetError(Exception):
    """The root of every xwvnet exception (the classes raised also derive from a builtin exception).

    Every one pickles whole, whatever its constructor takes (its message and attributes such as a damaged chunk's
    ``ids``), so an error raised in a dask worker reaches the client as the same named error.
    """

    def __reduce__(self) -> tuple:
        return _rebuilt, (type(self), self.args, dict(self.__dict__))


def _rebuilt(cls: type[XWVNetError], args: tuple, state: dict) -> XWVNetError:
    """An unpickled xwvnet error: its args and attributes set back, without calling its constructor again."""
    solid = max((k for k in cls.__mro__ if k.__module__ == "builtins"), key=lambda k: k.__basicsize__)
    err = solid.__new__(cls, *args)  # the builtin whose instance layout the class has (OSError, ImportError ...)
    err.args = args
    err.__dict__.update(state)
    return err


class XWVNetWarning(UserWarning):
    """The root of every xwvnet warning."""


# ---- usage: the call is wrong ------------------------------------------------------------------------------
class UsageError(XWVNetError):
    """The family of errors in the call itself: an argument's value or type, contradicting options, unknown names."""


class InvalidArgumentError(UsageError, ValueError):
    """An argument's value is not allowed: out of range, not one of the choices, or contradicting another one.

    A ``ValueError``. The message names the argument, the value given and what is allowed.
    """


class InvalidTypeError(UsageError, TypeError):
    """An argument is of a type the function does not take (or a keyword it does not know).

    A ``TypeError``. The message names the argument, the type given and the types taken.
    """


class UnknownKeyError(UsageError, KeyError):
    """A name looked up in one of xwvnet's registries (sample files ...) is not there.

    A ``KeyError``. The message lists the names that are known.
    """


# ---- input: the data given is wrong -----------------------------------------------------------------------
class InputError(XWVNetError):
    """The family of errors in the data given: Datasets, arrays, files and products xwvnet cannot use as they are."""


class InvalidDataError(InputError, ValueError):
    """A Dataset or array lacks a variable, dimension, coordinate, dtype or values the call needs.

    A ``ValueError``. The message says what was found and how to make data that fits (often the function that
    opens, embeds or prepares it).
    """


class InvalidFileError(InputError, ValueError):
    """A file or product cannot be used: malformed, damaged, truncated, of another format, or inconsistent.

    A ``ValueError``. The message names the file and what is wrong with it.
    """


class UnsafeInputError(InvalidFileError):
    """A file or product refused as unsafe: XML entities or a DTD, a zip bomb, a link or href out of the product.

    A ``ValueError`` (an :class:`InvalidFileError`). Such input is never read further.
    """


class InputNotFoundError(InputError, FileNotFoundError):
    """A file, folder, pattern or product given does not exist, or holds none of the files looked for.

    A ``FileNotFoundError``. The message names the path and what was expected there.
    """


class InputChangedError(InputError, OSError):
    """A file that was read when opened cannot be read later: it changed or was damaged meanwhile.

    An ``OSError``. The message names the file; replace or remove it and re-run.
    """


# ---- output: the destination cannot take the result -------------------------------------------------------
class OutputError(XWVNetError):
    """The family of errors in the destination of a result: occupied, of the wrong kind, or not writable there."""


class OutputExistsError(OutputError, FileExistsError, ValueError):
    """The destination already holds something that writing would replace.

    A ``FileExistsError`` and a ``ValueError``. Pass ``overwrite=True`` (``--overwrite``) or another destination.
    """


class OutputNotFolderError(OutputError, NotADirectoryError, ValueError):
    """The destination is a file where a folder is needed.

    A ``NotADirectoryError`` and a ``ValueError``. Give a folder (new or empty) instead.
    """


class OutputLocationError(OutputError, ValueError):
    """The destination is a kind of location this output is not written to (object storage, the input itself).

    A ``ValueError``. The message says where such an output can go.
    """


# ---- stores: an xwvnet store or index does not match --------------------------------------------------------
class StoreError(XWVNetError):
    """The family of errors of xwvnet stores and retrieval indexes: mismatched, unreachable, damaged or conflicting."""


class StoreMismatchError(StoreError, ValueError):
    """Data that does not fit the store it is written to or resumed in.

    Other variables, tag codes, imagettes or their order, or embeddings made with other settings. A
    ``ValueError``. Use the same settings and data as the store was written with, or write to a new store.
    """


class NotAStoreError(StoreError, ValueError):
    """No xwvnet store of the kind asked is at a location (or snapshot); the message says what was found."""


class DamagedChunkError(StoreError, OSError):
    """A chunk is missing or fails its checksum; ``variable``, ``chunk_index``, ``start``, ``stop``, ``ids``."""

    def __init__(self, message: str, variable: str, chunk_index: int, start: int, stop: int,
                 ids: list[str] | None) -> None:
        super().__init__(message)
        self.variable, self.chunk_index, self.start, self.stop, self.ids = variable, chunk_index, start, stop, ids


class WriteConflictError(StoreError, RuntimeError):
    """Another writer committed changes that overlap this write's; nothing of this write was committed."""


class StoreAccessError(StoreError, OSError):
    """The storage itself failed (no bucket, no credentials, denied, a file in the way, full, read-only, damaged)."""


class IncompleteStoreWarning(XWVNetWarning):
    """An embedding store whose run did not finish: only its complete rows are shown."""


class ForeignStoreWarning(XWVNetWarning):
    """A plain Zarr store written outside xwvnet: read-only, without checksums or transactions."""


# ---- models: encoders, weights, checkpoints, probes ---------------------------------------------------------
class ModelError(XWVNetError):
    """The family of errors of encoders, weights, checkpoints and probes: damaged, foreign or not fitting the data."""


class ModelMismatchError(ModelError, ValueError):
    """A model does not fit what it is used with: another architecture, input channels, feature count or tags.

    A ``ValueError``. Use the model the data were made with, or settings that match the model.
    """


class ModelStateError(ModelError, TypeError):
    """A model is in a state that does not allow the operation (an in-memory encoder cannot be sent to a process).

    A ``TypeError``, as ``pickle`` raises for objects it cannot send. The message says how to get a usable model.
    """


# ---- unavailable: something needed is not on this machine ---------------------------------------------------
class UnavailableError(XWVNetError):
    """The family of errors for what a call needs and this machine lacks: a package, a GPU, a cluster, a download."""


class MissingDependencyError(UnavailableError, ImportError):
    """An optional dependency that this call needs is not installed.

    An ``ImportError``. The message gives the ``pip install`` line (often an xwvnet extra).
    """


class DeviceUnavailableError(UnavailableError, ValueError):
    """The device asked for (a CUDA GPU, or GPU dask workers) is not available.

    A ``ValueError``. Use ``device='cpu'`` (or ``'auto'``), or start GPU workers.
    """


# ---- run: a computation started and failed ------------------------------------------------------------------
class RunError(XWVNetError):
    """The family of errors of computations that started and failed (what was done is kept where it can be)."""


class TrainingDivergedError(RunError, FloatingPointError):
    """The training loss became infinite or NaN.

    A ``FloatingPointError``. Lower the learning rate, or train in ``float32``.
    """


#: The family classes, in the order the module's documentation lists them.
FAMILIES = (UsageError, InputError, OutputError, StoreError, ModelError, UnavailableError, RunError)


def warn(message: str | Warning, category: type[Warning] = XWVNetWarning) -> None:
    """Issue a warning attributed to the first caller outside xwvnet (the user's line, not ours).

    Python 3.12's ``skip_file_prefixes`` does this; on 3.11 the stack level is counted here, so every xwvnet
    warning points at the user's code whatever depth it is raised from.

    Parameters
    ----------
    message : str or Warning
        The warning's text (what happened and what to do), or a warning instance carrying more (then
        ``category`` is its class).
    category : type of Warning, default XWVNetWarning
        Its class (an xwvnet warning class).

    Returns
    -------
    None
    """
    import os
    import sys
    import warnings

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is warn's caller
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, category, stacklevel=level)
