"""Sentinel-1 wave-mode imagettes with WV-Net: ingest, store, embed, probe, search, collocate, train, export.

The ``xwvnet`` command has one subcommand per job, each calling one library function (``xwvnet ingest`` is
:func:`xwvnet.ingest`, ``xwvnet embed`` is :func:`xwvnet.embed_store` ...). Each subcommand has an
``_add_<name>(subparsers)`` that declares its arguments and binds ``func=_run_<name>`` with
``set_defaults``; ``_run_<name>(args)`` calls the library and returns an exit code. No logic of its own lives here:
the ``choices=`` of an option are the library's own constants (read on first use, so that building the parser
imports neither torch nor scikit-learn). An expected error (bad input, missing file, weights unavailable offline, a
refused store, a local cluster that cannot start) prints one line and exits 1; ``--debug`` shows the traceback.
Ctrl-C prints one line and exits 130: the worker processes of a local cluster started here ignore it, and the
cluster is closed quietly. During ``xwvnet embed`` a first Ctrl-C lets the running chunks finish and commits them
before exiting 130; a second exits 130 at once.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ._runtime import BATCH_SIZE, PRECISIONS
from .errors import InvalidArgumentError


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except ``None`` or where the help says it (then the help says what the library
    chooses); the options of a ``TrainConfig`` field show that field's default, read from there when help is shown."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if getattr(action, "train_setting", False):
            from .training import TrainConfig

            default = TrainConfig.default_of(action.dest)  # a flag says which way its field goes by default
            return f"{action.help} (default: {f'{action.dest}={default}' if action.nargs == 0 else default})"
        if action.default is None or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _Choices(Sequence[str]):
    """The names of a library constant (a tuple, or a mapping's keys), imported from its module on first use.

    ``argparse`` only iterates over and tests membership in ``choices`` (give the option a ``metavar``, which it
    would otherwise build from them), so a constant of a module that imports torch (the architectures) is read
    when an option is checked or ``--help`` is shown, not when the parser is built.
    """

    def __init__(self, module: str, name: str, *extra: str) -> None:
        self.module, self.name, self.extra = module, name, extra

    def _names(self) -> tuple[str, ...]:
        return (*self.extra, *getattr(importlib.import_module(self.module), self.name))

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        return self._names()[i]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __contains__(self, value: object) -> bool:
        return value in self._names()

    def __repr__(self) -> str:
        return repr(self._names())


def _command(sub: argparse._SubParsersAction, name: str, help: str) -> argparse.ArgumentParser:
    """A subcommand whose ``func`` default is ``_run_<name>``, showing defaults in its ``--help``."""
    parser = sub.add_parser(name, help=help, description=help, formatter_class=_Help)
    parser.set_defaults(func=globals()[f"_run_{name}"])
    return parser


def _storage_arg(parser: argparse.ArgumentParser, what: str = "store") -> None:
    """The ``--storage-option KEY=VALUE`` option of every command that reads or writes object storage (``what``)."""
    parser.add_argument("--storage-option", action="append", default=[], metavar="KEY=VALUE", dest="storage_option",
                        help=f"{what} credentials/endpoint, repeated for each, e.g. endpoint_url=http://127.0.0.1:9000 "
                        "allow_http=true (default: the standard environment, AWS_ENDPOINT_URL ...)")


def _storage_options(args: argparse.Namespace) -> dict[str, object] | None:
    """``--storage-option`` values as a mapping (true/false as booleans)."""
    out: dict[str, object] = {}
    for item in args.storage_option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"--storage-option takes KEY=VALUE, found {item!r}.")
        out[key] = {"true": True, "false": False}.get(value.lower(), value)
    return out or None


@contextlib.contextmanager
def _warnings_as_lines(command: str) -> Iterator[None]:
    """Warnings print as one line each, ``xwvnet COMMAND: warning: ...``, instead of Python's form, which quotes the
    calling source line (here the ``xwvnet`` script's ``sys.exit(main())``)."""

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: str | None = None) -> None:
        print(f"xwvnet {command}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


# --- where dask work runs -------------------------------------------------------------------------------------------
#: the loggers of dask.distributed and its event loop, silenced while a local cluster starts and stops
_DASK_LOGGERS = ("distributed", "tornado", "asyncio")


@contextlib.contextmanager
def _quiet_logs(debug: bool = False) -> Iterator[None]:
    """Silence dask.distributed's loggers (unless ``debug``): a failed start or a shutdown after Ctrl-C is then our
    one line, not pages of worker tracebacks."""
    if debug:
        yield
        return
    names = {*_DASK_LOGGERS, *(n for n in logging.Logger.manager.loggerDict if n.split(".")[0] in _DASK_LOGGERS)}
    loggers = [logging.getLogger(n) for n in sorted(names)]
    before = [(lg, lg.level, lg.disabled) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)  # loggers made meanwhile inherit it
        lg.disabled = True
    try:
        yield
    finally:
        for lg, level, disabled in before:
            lg.setLevel(level)
            lg.disabled = disabled


@contextlib.contextmanager
def _children_ignore_sigint() -> Iterator[None]:
    """Processes started inside ignore Ctrl-C (an ignored signal stays ignored across ``exec``, and Python then
    installs no ``KeyboardInterrupt`` handler); this process gets its handler back at the end.

    So Ctrl-C interrupts only this process, which closes the cluster; its workers print nothing. (A Ctrl-C while
    the cluster starts is ignored: a few seconds.)
    """
    try:
        before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread (main() called from a thread): signals are not ours to change
        before = None
    try:
        yield
    finally:
        if before is not None:
            signal.signal(signal.SIGINT, before)


@contextlib.contextmanager
def _where(args: argparse.Namespace, device: str = "cpu") -> Iterator[Any]:
    """The ``client=`` of a command's library call: the ``--scheduler`` address as given (or ``threads``); a local
    cluster of ``--workers`` processes x ``--threads`` threads for ``device`` (one worker per GPU for CUDA), started
    here and closed quietly at the end (Ctrl-C included); else ``None``. The library resolves it, with the device
    (:func:`xwvnet._runtime.run_context`).

    Raises
    ------
    xwvnet.distributed.LocalClusterError
        If the local cluster cannot start (one line: what failed and what to do).
    """
    workers, threads = getattr(args, "workers", None), getattr(args, "threads", None)
    if workers is None and threads is None:
        yield getattr(args, "scheduler", None)
        return
    from .distributed import local_client

    with _quiet_logs(args.debug), _children_ignore_sigint():
        # workers log errors only: their warnings about tasks cancelled by a Ctrl-C would follow our one line
        client = local_client(workers, threads, device=device, silence_logs=logging.DEBUG if args.debug else
                              logging.ERROR)
    try:
        yield client
    finally:
        with _quiet_logs(args.debug):
            client.close()


# --- ingest ---------------------------------------------------------------------------------------------------------
def _add_ingest(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "ingest", "read WV SAFE products and quicklooks into a Zarr imagette store (resumable)")
    p.add_argument("sources", nargs="+", help="SAFE folders/zips and EOPF S01SWVSLC products (or their s3://, gs://, "
                   "az:// URLs), quicklook files, folders of them or quoted glob patterns")
    p.add_argument("--out", "--store", dest="out", required=True,
                   help="the store to create or append to (path or s3://, gs://, az:// URL); --store is an alias")
    p.add_argument("--labels", type=Path, default=None,
                   help="CSV with a 'filename' column and one 0/1 column per tag (default: no tags)")
    p.add_argument("--batch", type=int, default=256, help="imagettes read and written per step (one commit each)")
    p.add_argument("--repair", action="store_true", help="first read every chunk and rewrite damaged ones from SOURCES")
    p.add_argument("--spacing", type=float, nargs="+", default=None, metavar="METRES",
                   help="SAFE products: quicklook pixel spacing in metres, one value or azimuth and range "
                   "(default: 10 x 10 SLC pixels per quicklook pixel)")
    p.add_argument("--keep-sigma0", action="store_true", help="SAFE products: also store the multilooked sigma0")
    p.add_argument("--denoise", action="store_true", help="SAFE products: remove thermal noise before calibrating")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None,
                       help="SAFE products: calibrate in a pool of N worker processes, imagette by imagette, "
                       "while this process commits (default: threads in this process)")
    where.add_argument("--scheduler", default=None, help="SAFE products: a dask.distributed scheduler address "
                       "(default: threads in this process)")
    _storage_arg(p, "store and SAFE URL")


def _run_ingest(args: argparse.Namespace) -> int:
    from .ingestion import ingest

    report = ingest(args.sources, args.out, labels=args.labels, batch=args.batch, spacing=args.spacing,
                    keep_sigma0=args.keep_sigma0, denoise=args.denoise, client=args.scheduler, workers=args.workers,
                    progress=True, repair=args.repair, storage_options=_storage_options(args))
    print(report.summary())
    if not report.added and not report.present:
        print(f"xwvnet ingest: nothing could be read from {' '.join(args.sources)} ({len(report.skipped)} "
              "input(s) skipped, reasons above); give existing SAFE folders/zips, quicklook files (.png .jpg .tif), "
              "folders of them or glob patterns", file=sys.stderr)
        return 1
    return 1 if report.damaged else 0


# --- label ------------------------------------------------------------------------------------------------------------
def _add_label(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "label", "add or update the tags of imagettes already in a store, from a tag CSV")
    p.add_argument("store", help="the imagette store (path or URL)")
    p.add_argument("labels", type=Path, help="CSV with a 'filename' column and one 0/1 column per tag")
    _storage_arg(p)


def _run_label(args: argparse.Namespace) -> int:
    from .ingestion import add_labels

    report = add_labels(args.store, args.labels, storage_options=_storage_options(args))
    print(f"tags set from {args.labels} for {report.added} of {report.total} imagettes in {args.store}")
    for line in report.warnings:  # rows matching no stored imagette: their count and the first few names
        print(line)
    return 0


# --- verify -----------------------------------------------------------------------------------------------------------
def _add_verify(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "verify", "read every chunk of a store, list damaged ones and say how complete it is")
    p.add_argument("store", help="an imagette store or an embedding store (path or URL)")
    p.add_argument("--snapshot", default=None, help="a snapshot id or tag (default: the newest commit)")
    _storage_arg(p)


def _run_verify(args: argparse.Namespace) -> int:
    from .io.audit import verify

    report = verify(args.store, snapshot=args.snapshot, storage_options=_storage_options(args))
    print(report.summary())
    return 0 if report.ok else 1


# --- status ---------------------------------------------------------------------------------------------------------
def _add_status(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "status", "how complete a store is (rows written, missing) and the command that completes it")
    p.add_argument("store", help="an imagette store or an embedding store (path or URL)")
    p.add_argument("--snapshot", default=None, help="a snapshot id or tag (default: the newest commit)")
    _storage_arg(p)


def _run_status(args: argparse.Namespace) -> int:
    from .io.audit import status

    report = status(args.store, snapshot=args.snapshot, storage_options=_storage_options(args))
    print(report.summary())
    return 0 if not report.missing else 1


# --- history --------------------------------------------------------------------------------------------------------
def _add_history(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "history", "the commits of a store, newest first (ids for --snapshot and open_store)")
    p.add_argument("store", help="an imagette store or an embedding store (path or URL)")
    _storage_arg(p)


def _run_history(args: argparse.Namespace) -> int:
    from .io.store import history

    print(history(args.store, storage_options=_storage_options(args)).to_string(index=False))
    return 0


# --- collocate ------------------------------------------------------------------------------------------------------
def _add_collocate(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "collocate", "sample ERA5 / WW3 / OCN variables at imagette positions and times")
    p.add_argument("imagettes", help="an imagette store (path or URL), WV SAFE products (folders, zips, manifest.safe, "
                   "or their URLs), OCN products, or a folder of them")
    _storage_arg(p, "store and SAFE URL")
    p.add_argument("source", help="the source: a netCDF/GRIB/Zarr file, NDBC text, WAVEWATCH III or SWAN spectra, a "
                   "folder of such files, or a quoted glob such as 'era5/*.nc'")
    p.add_argument("--out", type=Path, required=True, help="the table to write (.nc or .csv), one row per imagette")
    p.add_argument("--variables", nargs="+", default=None, help="source variables (default: all on its grid)")
    p.add_argument("--method", choices=_Choices("xwvnet.joins.grid", "METHODS"), default="linear", metavar="METHOD",
                   help="how gridded sources are sampled at imagette positions: %(choices)s")
    p.add_argument("--time-tolerance", default=None,
                   help="largest time between an imagette and the source value joined to it, e.g. 3h or 30min "
                   "(default: grids: inside their time record only; points: any time, the worst offset reported)")
    p.add_argument("--max-distance-km", type=float, default=None,
                   help="point/track sources and curvilinear grids: matches farther than this get NaN (default: no "
                   "limit for points, the worst distance reported; one cell diagonal for curvilinear grids)")
    p.add_argument("--prefix", default=None, help="name prefix (default: era5, ww3, ocn ... from the source)")
    p.add_argument("--depth", type=float, default=None,
                   help="in situ platforms: the depth level nearest this (default: the shallowest valid one)")
    p.add_argument("--quality-flags", type=int, nargs="+", default=None, metavar="FLAG",
                   help="in situ / track QC flags kept (default: 1 2, good and probably good)")
    p.add_argument("--positions", nargs="+", default=None, metavar="PATH",
                   help="L2 OCN products (files or folders) or SAFE products of the same acquisitions: imagettes "
                   "without a position (quicklooks) take theirs, matched on imagette_key (default: the imagettes' "
                   "own positions only)")
    p.add_argument("--position", type=float, nargs=2, default=None, metavar=("LAT", "LON"),
                   help="where a source without a position of its own is (NDBC text files, point series): the "
                   "station's latitude and longitude in degrees (default: the source's own)")


def _run_collocate(args: argparse.Namespace) -> int:
    from .joins.collocation import collocate_to_file

    with _warnings_as_lines("collocate"):
        table = collocate_to_file(args.imagettes, args.source, args.out, variables=args.variables,
                                  method=args.method, time_tolerance=args.time_tolerance,
                                  max_distance_km=args.max_distance_km, prefix=args.prefix, depth=args.depth,
                                  quality_flags=args.quality_flags, positions=args.positions,
                                  position=None if args.position is None else tuple(args.position),
                                  storage_options=_storage_options(args))
    print(table.to_dataframe().describe().T.to_string())
    unplaced = int(table.attrs.get("collocation_no_position", 0))
    if unplaced:
        print(f"{unplaced} of {table.sizes['imagette']} imagettes have no position and got NaN (add theirs with "
              "--positions)")
    print(f"wrote {args.out}")
    return 0


# --- embed ----------------------------------------------------------------------------------------------------------
def _add_embed(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "embed", "embed a whole imagette store into an embedding store (resumable, appends)")
    p.add_argument("store", help="the imagette store to embed (path or s3://, gs://, az:// URL)")
    p.add_argument("out", help="the embedding store to create or complete (path or URL)")
    p.add_argument("--encoder", default="wvnet-resnet50",
                   help="a named encoder (xwvnet.models.zoo.ENCODERS: wvnet-resnet50 ...) or a state-dict path")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, help="dask scheduler address or file; 'threads': here (default: "
                       "threads in this process, or the local cluster of --workers)")
    where.add_argument("--workers", type=int, default=None,
                       help="start a local dask cluster of N worker processes (default: threads in this process, "
                       "whose progress bar moves per batch)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads per local worker (alone: one local worker process with N threads) (default: 1 per "
                   "worker with --workers; without either, 2 threads in this process)")
    p.add_argument("--chunk-size", "--chunk", dest="chunk_size", type=int, default=None,
                   help="imagettes per task and stored chunk, fixed when the output store is created; --chunk is an "
                   "alias (default: a multiple of the input's chunk near 256)")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="imagettes per forward pass")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda (GPU tasks ask workers for a GPU resource)")
    p.add_argument("--precision", default="float32", choices=PRECISIONS,
                   help="arithmetic of the forward pass (bfloat16/float16: faster on GPUs, embeddings differ "
                   "slightly; fixed for a store)")
    p.add_argument("--dtype", default="float32", choices=_Choices("xwvnet.archive", "EMBEDDING_DTYPES"),
                   metavar="DTYPE",
                   help="how embeddings are stored: %(choices)s (float16: half the size)")
    p.add_argument("--repair", action="store_true", help="first read every output chunk and re-embed damaged ones")
    p.add_argument("--commit-every", type=float, default=30.0, help="seconds between commits of finished chunks")
    _storage_arg(p)


def _run_embed(args: argparse.Namespace) -> int:
    """Embed; a first Ctrl-C keeps the finished chunks (summary, the command that completes the store, 130), a
    second one exits 130 at once (``os._exit``: neither the pool's threads nor a local cluster's close hold it)."""
    import os

    from .archive import EmbedInterrupted, embed_store
    from .io.store import completing_command

    with _where(args, args.device) as client:
        try:
            report = embed_store(
                args.store, args.out, args.encoder, client=client, chunk_size=args.chunk_size,
                batch_size=args.batch_size, device=args.device, precision=args.precision, progress=True,
                errors="report", dtype=args.dtype, repair=args.repair, commit_every=args.commit_every,
                storage_options=_storage_options(args),
            )
        except EmbedInterrupted as stop:
            report = stop.report
            kept = f"{len(report.computed)} chunks computed now are committed"
            if stop.aborted or stop.abandoned:  # tasks may still run in threads here: exit without them
                how = "aborted" if stop.aborted else f"interrupted; {stop.abandoned} running chunks given up"
                print(f"xwvnet embed: {how}; {kept}; re-run the same command to complete the store.",
                      file=sys.stderr)
                mp_util = sys.modules.get("multiprocessing.util")
                if mp_util is not None:  # a local cluster's queues: unlink their semaphores (quick), or the
                    with contextlib.suppress(Exception):  # resource tracker warns of leaks after our line
                        mp_util._run_finalizers(0)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(130)
            command = completing_command(args.out, {"input": args.store, "encoder": args.encoder,
                                                    "precision": args.precision, "embedding_dtype": args.dtype})
            print(report.summary())
            print(f"xwvnet embed: interrupted; {kept} ({report.skipped + len(report.computed)} of {report.chunks} "
                  f"chunks done); re-run the same command to complete the store: {command}",
                  file=sys.stderr)
            return 130  # after a local cluster closed (quickly: nothing runs on it any more)
    print(report.summary())
    return 0 if report.complete else 1


# --- evaluate -------------------------------------------------------------------------------------------------------
def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "evaluate", "compare encoders on the same imagettes: one row per encoder, one split for all")
    p.add_argument("stores", nargs="+", help="store(s) (paths or URLs) holding the imagettes and targets, joined on id")
    _storage_arg(p)
    p.add_argument("--encoders", "--encoder", nargs="+", action="extend", default=None, dest="encoders",
                   help="registry names, weight files, 'image-statistics' or 'stored'; several values, or the option "
                   "repeated (default: all four standard)")
    p.add_argument("--targets", nargs="+", default=None,
                   help="variables to probe (default: those of hs t2m wind_speed class labels that exist)")
    p.add_argument("--test-size", type=float, default=0.3, help="fraction of imagettes held out for testing")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/test split and cross-validation")
    p.add_argument("-k", "--k", type=int, default=10, dest="k",
                   help="neighbours per test imagette for retrieval precision of a class or tags (0: none)")
    p.add_argument("--paper", action="store_true",
                   help="print the columns the papers print, then the authors' own figures (on their data)")
    p.add_argument("--curve", default=None, metavar="TARGET",
                   help="also print data-sparse learning curves of this target for every encoder (default: none)")
    p.add_argument("--curve-sizes", nargs="+", type=int, default=[10, 30, 100, 300, 1000],
                   help="training set sizes of the curves (all training imagettes are added)")
    p.add_argument("--curve-seeds", type=int, default=3, help="random subsets per size of the curves")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="imagettes per forward pass when embedding")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--csv", type=Path, default=None, help="also write the table to this CSV file (default: none)")


def _run_evaluate(args: argparse.Namespace) -> int:
    from .evaluation.curves import learning_curves
    from .evaluation.table import DEFAULT_ENCODERS, evaluate, format_table, paper_table, published_table
    from .io.store import open_stores

    ds = open_stores(args.stores, storage_options=_storage_options(args))
    embedded: dict = {}
    table = evaluate(ds, args.encoders or DEFAULT_ENCODERS, args.targets, test_size=args.test_size, seed=args.seed,
                     batch_size=args.batch_size, device=args.device, k=args.k or None, embeddings=embedded)
    if args.paper:
        print(paper_table(table).to_string(float_format=lambda v: f"{v:.3f}", na_rep="-"))
        print("\nPublished by the authors, on their own data (not comparable as is):")
        print(published_table().to_string(float_format=lambda v: f"{v:.2f}", na_rep="-"))
    else:
        print(format_table(table, per_tag=True))
    if args.curve and embedded:
        curves = learning_curves(ds, embedded, args.curve, sizes=[*args.curve_sizes, None], seeds=args.curve_seeds,
                                 test_size=args.test_size, split_seed=args.seed)
        metric = next(m for m in ("rmse", "accuracy", "micro_auroc") if m in curves["metric"].values)
        print(f"\nLearning curves of {args.curve!r}: mean {metric} over {args.curve_seeds} seeds, by training labels")
        print(curves["mean"].sel(metric=metric).to_pandas().to_string(float_format=lambda v: f"{v:.3f}"))
    if args.csv:
        table.to_csv(args.csv)
    return 0


# --- probe ----------------------------------------------------------------------------------------------------------
def _add_probe(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "probe", "fit a linear probe on stored embeddings and save it, or apply a saved one")
    p.add_argument("stores", nargs="+", help="store(s) (paths or URLs) with `embedding` (and the target), joined on id")
    _storage_arg(p)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--target", help="variable to fit (a number per imagette, or labels)")
    mode.add_argument("--load", type=Path, help="a probe file written by --save, to apply")
    p.add_argument("--save", type=Path, default=None,
                   help="where to write the fitted probe (.npz, no pickle) (default: not saved)")
    p.add_argument("--csv", type=Path, default=None,
                   help="where to write the predictions (with --load) (default: not written)")
    p.add_argument("--seed", type=int, default=0, help="seed of the cross-validation folds")


def _run_probe(args: argparse.Namespace) -> int:
    from .io.store import open_stores
    from .probe import Probe, fit_probe, output_name, predict

    ds = open_stores(args.stores, storage_options=_storage_options(args))
    if args.target:
        probe = fit_probe(ds, args.target, seed=args.seed)
        print(probe)
        if args.save:
            print(f"saved {probe.save(args.save)}")
        return 0
    probe = Probe.load(args.load)
    table = predict(ds, probe)[output_name(probe)].compute().to_pandas()
    print(table.describe().to_string() if table.ndim == 1 else table.describe().T.to_string())
    if args.csv:
        table.to_csv(args.csv)
    return 0


# --- neighbors ------------------------------------------------------------------------------------------------------
def _add_neighbors(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "neighbors", "the k most similar imagettes (cosine of embeddings), exact and blocked")
    p.add_argument("stores", nargs="+", help="store(s) (paths or URLs) with `embedding` (and images), joined on id")
    _storage_arg(p)
    p.add_argument("-k", type=int, default=10, help="neighbours per query")
    p.add_argument("--query", nargs="+", default=None, help="imagette ids to query (default: every imagette)")
    p.add_argument("--csv", type=Path, default=None,
                   help="write (query, rank, neighbor, similarity) to this CSV (default: printed only)")
    p.add_argument("--figure", type=Path, default=None,
                   help="save the first query's neighbour panel (needs images) (default: none)")
    p.add_argument("--index", type=Path, default=None,
                   help="an approximate index made by `xwvnet index STORE` (default: exact search)")


def _run_neighbors(args: argparse.Namespace) -> int:
    from . import plot
    from .io.store import open_stores
    from .retrieval import neighbors

    ds = open_stores(args.stores, storage_options=_storage_options(args))
    found = neighbors(ds, k=args.k, query=args.query, index=args.index).compute()
    table = found[["neighbor", "similarity"]].reset_coords(drop=True).to_dataframe()
    print(table.head(5 * args.k).to_string())
    if args.csv:
        table.to_csv(args.csv)
    if args.figure:
        first = str(found["imagette"].values[0])
        plot.neighbor_panel(ds, first, k=args.k, result=found).savefig(args.figure, dpi=110)
        print(f"saved {args.figure}")
    return 0


# --- index ----------------------------------------------------------------------------------------------------------
def _add_index(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "index", "build (or update) the approximate retrieval index beside an embedding store")
    p.add_argument("store", help="the embedding store (from `xwvnet embed`), on a local disk")
    p.add_argument("--update", action="store_true", help="add imagettes appended since the index was built")
    p.add_argument("--method", default="ivf", choices=_Choices("xwvnet.retrieval.index", "METHODS"), metavar="METHOD",
                   help="%(choices)s: faiss inverted lists (IVF,SQ8, candidates re-ranked on float16 copies; the "
                   "default) or an HNSW32,SQ8 graph (slower on 2048-d embeddings)")
    p.add_argument("--effort", type=int, default=None,
                   help="the least search effort (nprobe for ivf, efSearch for hnsw): tuning to recall@10 0.95 on "
                   "imagettes held out of training starts there (default: 1 for ivf, 128 for hnsw)")
    p.add_argument("--overwrite", action="store_true", help="build again over an existing index")


def _run_index(args: argparse.Namespace) -> int:
    from .retrieval import build_index, update_index

    index = (update_index(args.store) if args.update else
             build_index(args.store, method=args.method, effort=args.effort, overwrite=args.overwrite))
    print(f"{index.path}: {index.n} imagettes ({index.info['n_skipped']} not finite or of zero norm, left out), "
          f"{index.info['factory']}, effort {index.effort}")
    return 0


# --- export ---------------------------------------------------------------------------------------------------------
def _add_export(sub: argparse._SubParsersAction) -> None:
    from .export.geoparquet import DTYPES
    from .export.shards import FORMATS, MAX_FILE_BYTES

    p = _command(sub, "export", "write a store as GeoParquet shards with a STAC Collection, or as a plain Zarr copy")
    p.add_argument("store", help="the embedding store (geoparquet), or any store (zarr): a path or a URL")
    p.add_argument("--format", default="geoparquet", choices=FORMATS, help="what to write")
    p.add_argument("--out", required=True, help="geoparquet: the output folder (local); zarr: the plain store (path "
                   "or URL, reached with --storage-option too)")
    p.add_argument("--dtype", default="float32", choices=DTYPES, help="geoparquet: type of the embedding column")
    p.add_argument("--max-file-mb", type=float, default=MAX_FILE_BYTES / 2**20,
                   help="geoparquet: about this many MiB of rows per shard (before compression)")
    p.add_argument("--snapshot", default=None, help="export the store as of this commit (default: the newest)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output")
    _storage_arg(p)


def _run_export(args: argparse.Namespace) -> int:
    from .export.shards import export_store

    if args.max_file_mb <= 0:
        raise InvalidArgumentError(f"--max-file-mb must be positive, got {args.max_file_mb}.")
    written = export_store(args.store, args.out, format=args.format, dtype=args.dtype,
                           max_file_bytes=max(1, int(args.max_file_mb * 2**20)), snapshot=args.snapshot,
                           storage_options=_storage_options(args), overwrite=args.overwrite)
    if isinstance(written, str):
        print(f"{written}: plain Zarr v3 copy of {args.store}")
    else:
        print(f"{args.out}: {written.summary()} ({args.dtype})")
    return 0


# --- train ----------------------------------------------------------------------------------------------------------
def _add_train(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "train", "train an encoder with SimCLR on a store (under torchrun: on every rank)")
    p.add_argument("store", help="the imagette store to train on (path or URL)")
    p.add_argument("--out", required=True, type=Path, help="folder for encoder.pt, encoder.json, loss.csv, checkpoint")
    # the run's settings: fields of xwvnet.training.TrainConfig, whose defaults apply when an option is not given
    # (None here) and show in --help, read from TrainConfig when it is shown
    setting = _train_setting(p)
    setting("--arch", choices=_Choices("xwvnet.models.backbones", "ARCHITECTURES"), metavar="ARCH",
            help="the backbone: %(choices)s")
    setting("--init", help="start from 'wvnet-resnet50' or a weights/checkpoint file")
    setting("--image-size", type=int, help="view size in pixels, cut at the embedding's scale")
    setting("--batch-size", type=int, help="global batch, split over ranks")
    setting("--steps", type=int, help="optimiser steps of the schedule")
    setting("--lr", type=float, help="peak learning rate")
    setting("--temperature", type=float, help="NT-Xent temperature")
    setting("--seed", type=int, help="seed of the initialisation, views and batch order")
    setting("--checkpoint-every", type=int, help="steps between checkpoints in OUT")
    setting("--num-workers", type=int, help="loader workers per rank")
    setting("--device", help="auto, cpu, cuda or cuda:N; under torchrun auto is each rank's GPU")
    setting("--bn-imagettes", type=int, help="imagettes whose embedding inputs re-estimate the saved encoder's "
            "batch-norm statistics; 0: those of the training views")
    setting("--precision", choices=_Choices("xwvnet.training.simclr", "TRAIN_PRECISIONS"), metavar="PRECISION",
            help="arithmetic of training: %(choices)s")
    setting("--flip", dest="flip", action="store_const", const=True,
            help="random flips (they reverse the wave direction)")
    setting("--rotate", dest="rotate90", action="store_const", const=True,
            help="random 90-degree rotations (they swap azimuth and range)")
    setting("--compile", action="store_const", const=True, help="torch.compile the encoder (worth it on GPUs)")
    # what this call does with the run
    p.add_argument("--max-seconds", type=float, default=None,
                   help="fit the schedule to this many seconds, counted from the start and outputs included: the "
                   "run times its first steps and ends, annealed, within them; --steps, if given, is the most "
                   "(default: no limit)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in OUT (kept until the new run's first checkpoint)")
    _storage_arg(p)


def _train_setting(parser: argparse.ArgumentParser) -> Any:
    """``add_argument`` for an option that sets a field of ``TrainConfig`` (its dest): no default here (``None``, so
    that the field's own applies), and ``--help`` shows the field's default."""

    def add(*flags: str, **kwargs: Any) -> argparse.Action:
        action = parser.add_argument(*flags, default=None, **kwargs)
        action.train_setting = True  # type: ignore[attr-defined]
        return action

    return add


def _run_train(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from .training import TrainConfig, train

    # the settings given as options; the others are TrainConfig's defaults
    settings = {f.name: value for f in fields(TrainConfig) if (value := getattr(args, f.name, None)) is not None}
    path = train(args.store, args.out, resume=args.resume, overwrite=args.overwrite, max_seconds=args.max_seconds,
                 storage_options=_storage_options(args), **settings)
    print(f"encoder weights: {path}")
    return 0


# --- demo -----------------------------------------------------------------------------------------------------------
def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "demo", "a tour on the sample data: ingest, embed, probe, retrieve, collocate")
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="folder for the store, tables and figures")
    p.add_argument("--quick", action="store_true", help="a smaller, faster run")


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(args.out, quick=args.quick)


_COMMANDS = ["ingest", "label", "verify", "status", "history", "embed", "demo", "collocate", "evaluate", "probe",
             "neighbors", "index", "train", "export"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``xwvnet`` command.

    Returns
    -------
    argparse.ArgumentParser
        One subcommand per job; each subparser's ``func`` default is the function that runs it.
    """
    from ._version import __version__

    parser = argparse.ArgumentParser(prog="xwvnet", description=__doc__.splitlines()[0], formatter_class=_Help)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    module = sys.modules[__name__]
    for name in _COMMANDS:
        getattr(module, f"_add_{name}")(sub)
    return parser


def _is_user_error(err: BaseException) -> bool:
    """Errors that a user can fix from the message alone (bad input, missing file, offline weights, refused store)."""
    from .errors import XWVNetError

    return isinstance(err, (XWVNetError, ValueError, OSError, LookupError, ImportError))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``xwvnet`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code: 0 on success, 1 when the job reports failures or an expected error occurred (printed as
        one message, without a traceback unless ``--debug``), 2 for bad arguments.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"xwvnet {args.command}: interrupted; what was committed is kept, re-run the same command to "
              "continue.", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug or not _is_user_error(err):
            raise
        print(f"xwvnet {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
