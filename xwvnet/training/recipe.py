"""The GPU recipe: SimCLR on a large imagette store with ResNet-50, as one command, with its reasoning.

``python -m xwvnet.training.recipe STORE --out runs/r50`` trains on every GPU of the machine (it starts ``torchrun``
itself when there are several); ``--init wvnet-resnet50`` continues WV-Net on your imagettes instead;
``--tiny`` checks on a CPU, in seconds, that the whole path starts (ResNet-18, 32-px views, two steps).

Why each setting (see ``docs/gpus.md`` for the longer version):

- **ResNet-50**, the architecture of WV-Net, so that the published weights can be continued (``--init``).
- **Views of 160 px cut from the 224-px embedding field** (``crop="field"``): the pixel scale of training is the one
  embedding uses (``transform="wvnet"``), and the crop is the main SimCLR augmentation; no flips or 90-degree
  turns (a turn swaps azimuth and range), no added speckle, no blur and no radiometric jitter (they erase the cues
  of sea state: measured in ``benchmarks/ssl_quality.py``).
- **Batch 256 per GPU** (global batch 256 x GPUs: SimCLR gains from many negatives, and NT-Xent gathers them over
  the ranks), **AdamW with the learning rate scaled by the square root of the global batch**
  (1e-3 at 256; a tenth of that when continuing from ``--init``), 5% linear warm-up, cosine decay.
- **bfloat16 autocast** (no loss scaling needed, the loss in float32), **channels_last** memory format and
  **SyncBatchNorm** over the ranks (global batch statistics, as SimCLR uses): what ``precision="auto"`` and
  ``device="auto"`` already do under CUDA.
- **torch.compile** on CUDA: compilation at the start, repaid over thousands of steps.
- Loader workers: up to 8 per rank (``num_workers=None``), windows of whole chunks, 16 batches shuffled together.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import InvalidArgumentError

__all__ = ["gpu_recipe", "main"]

#: global batch at which the base learning rates below apply
BASE_BATCH = 256
BASE_LR = 1e-3
CONTINUE_LR = 1e-4


def gpu_recipe(gpus: int, *, init: str | None = None, batch_per_gpu: int = 256, steps: int = 20_000,
               image_size: int = 160) -> dict:
    """The :func:`xwvnet.train` arguments of the GPU recipe for ``gpus`` GPUs.

    Parameters
    ----------
    gpus : int
        Number of GPUs (DDP ranks), at least 1.
    init : str, optional
        Weights to continue from (``"wvnet-resnet50"`` or a file); the learning rate is then a tenth.
    batch_per_gpu : int, default 256
        Imagettes per GPU and step; the global batch is ``gpus * batch_per_gpu``.
    steps : int, default 20000
        Optimizer steps of the run.
    image_size : int, default 160
        Side of the views, windows of the 224-px embedding field.

    Returns
    -------
    dict
        Keyword arguments of :func:`xwvnet.train` (without the data and ``out_dir``).

    Raises
    ------
    ValueError
        If ``gpus`` or ``batch_per_gpu`` is below 1.

    Examples
    --------
    >>> r = gpu_recipe(4)
    >>> r["batch_size"], round(r["lr"], 6)
    (1024, 0.002)
    """
    if gpus < 1 or batch_per_gpu < 1:
        raise InvalidArgumentError(f"gpus={gpus} and batch_per_gpu={batch_per_gpu} must both be at least 1.")
    batch = gpus * batch_per_gpu
    base = BASE_LR if init is None else CONTINUE_LR
    return {
        "arch": None if init is not None else "resnet50",  # the architecture of init when continuing
        "init": init,
        "image_size": image_size,
        "batch_size": batch,
        "steps": steps,
        "lr": base * math.sqrt(batch / BASE_BATCH),
        "temperature": 0.1,
        "precision": "auto",
        "device": "auto",
        "num_workers": None,
        "shuffle_size": 16 * batch_per_gpu,
        "checkpoint_every": 1000,
        "compile": True,
    }


def tiny_recipe() -> dict:
    """The same path at a size a CPU runs in seconds (ResNet-18, 32-px views, batch 8, two steps, no compile).

    Returns
    -------
    dict
        Keyword arguments of :func:`xwvnet.train`.
    """
    return {"arch": "resnet18", "image_size": 32, "batch_size": 8, "steps": 2, "warmup_steps": 1, "lr": BASE_LR,
            "device": "cpu", "precision": "float32", "num_workers": 0, "checkpoint_every": 1, "compile": False}


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where it is ``None`` or the help says it already."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _storage_options(items: Sequence[str]) -> dict[str, object] | None:
    """``--storage-option KEY=VALUE`` values as a mapping (true/false as booleans)."""
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"python -m xwvnet.training.recipe: --storage-option takes KEY=VALUE, found {item!r}.")
        out[key] = {"true": True, "false": False}.get(value.lower(), value)
    return out or None


def _parser() -> argparse.ArgumentParser:
    """The recipe's argument parser; its defaults are :func:`gpu_recipe`'s."""
    defaults = {name: p.default for name, p in inspect.signature(gpu_recipe).parameters.items()}
    parser = argparse.ArgumentParser(prog="python -m xwvnet.training.recipe", description=__doc__.splitlines()[0],
                                     formatter_class=_Help)
    parser.add_argument("store", help="the imagette store to train on (path or s3://, gs://, az:// URL)")
    parser.add_argument("--out", required=True, type=Path,
                        help="the run's folder: encoder.pt, encoder.json, loss.csv, checkpoint.pt")
    parser.add_argument("--init", default=None, help="continue from 'wvnet-resnet50' or a weights/checkpoint file, at "
                        "a tenth of the learning rate (default: a fresh ResNet-50)")
    parser.add_argument("--gpus", type=int, default=None, help="GPUs to use (default: all that torch sees)")
    parser.add_argument("--batch-per-gpu", type=int, default=defaults["batch_per_gpu"],
                        help="imagettes per GPU and step; the global batch is GPUs x this")
    parser.add_argument("--steps", type=int, default=defaults["steps"], help="optimiser steps of the schedule")
    parser.add_argument("--image-size", type=int, default=defaults["image_size"],
                        help="side in pixels of the views, windows of the 224-px embedding field")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="fit the schedule to this many seconds when fewer than --steps fit in them; the run "
                        "ends, annealed, within them (default: no limit)")
    parser.add_argument("--resume", action="store_true", help="continue the run in OUT from its checkpoint.pt")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run already in OUT (kept until the new run's first checkpoint)")
    parser.add_argument("--tiny", action="store_true", help="check on a CPU in seconds that the path starts "
                        "(ResNet-18, 32-px views, two steps)")
    parser.add_argument("--storage-option", action="append", default=[], metavar="KEY=VALUE", dest="storage_option",
                        help="store credentials/endpoint, repeated for each, e.g. endpoint_url=http://127.0.0.1:9000 "
                        "allow_http=true (default: the standard environment, AWS_ENDPOINT_URL ...)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The recipe's command line (``python -m xwvnet.training.recipe --help``).

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when the run finished.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    storage_options = _storage_options(args.storage_option)
    from .._runtime import cuda_device_count
    from .simclr import train

    if args.tiny:
        kwargs = tiny_recipe()
    else:
        gpus = cuda_device_count() if args.gpus is None else args.gpus
        if gpus < 1:
            parser.error("no GPU is visible to torch; use --tiny to check the path on a CPU, or xwvnet.train there.")
        if gpus > 1 and "WORLD_SIZE" not in os.environ:  # start one process per GPU, each running this command
            from torch.distributed import run

            run.main([f"--nproc_per_node={gpus}", "-m", "xwvnet.training.recipe", *(argv or sys.argv[1:])])
            return 0
        kwargs = gpu_recipe(gpus, init=args.init, batch_per_gpu=args.batch_per_gpu, steps=args.steps,
                            image_size=args.image_size)
        kwargs["compile"] = kwargs["compile"] and not args.no_compile
    path = train(args.store, args.out, max_seconds=args.max_seconds, resume=args.resume, overwrite=args.overwrite,
                 progress=not args.tiny, storage_options=storage_options, **kwargs)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"encoder weights: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
