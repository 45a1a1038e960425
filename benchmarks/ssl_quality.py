"""Does SimCLR training learn? Linear-probe RMSE of trained encoders against the same architecture at random init.

One run: 1,024 synthetic imagettes of 256 x 256 (ground-truth ``hs``, ``wind_speed``, ``peak_wavelength``; data
seed 0) -> ``xwvnet.train(arch="resnet18", max_seconds=...)`` per seed and per *cell* (a set of arguments changed
from the defaults) -> embed a *separate* set (data seed 1) with each trained encoder through its own saved
transform (``encoder.json``), and with the same architecture at the same seed's random initialisation -> seeded
ridge probes on half of it, scored on the other half. Beside them: the non-learned image-statistics baseline and
"predict the mean" (the spread of the targets). Prints, per cell, the RMSE of each target (mean and min..max over
seeds), the hs RMSE ratio trained / random init of every seed, and the steps every run reached (a loaded machine
reaches fewer in the same time; the load average is printed).

Usage::

    python benchmarks/ssl_quality.py                          # the defaults, 3 seeds, 600 s each (~35 min)
    python benchmarks/ssl_quality.py --cells all --seconds 300 # the ablation table (hours on 2 cores)
    python benchmarks/ssl_quality.py --quick                  # a smoke run: 1 seed, 20 s, small sets

Cells (``--cells NAME ...``, ``all``): see :data:`CELLS`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

TARGETS = ("hs", "wind_speed", "peak_wavelength")
#: the ablation: each cell changes these arguments of ``xwvnet.train`` from their defaults
CELLS: dict[str, dict] = {
    "defaults": {},
    # augmentations, each switched against the defaults (field crops at the embedding's scale, flips, rotations;
    # no speckle, no blur, no radiometric jitter)
    "+speckle": {"augment": {"speckle_p": 0.5}},
    "+blur": {"augment": {"blur_p": 0.5}},
    "+jitter": {"augment": {"jitter_p": 0.8}},
    "-flip-rotate": {"flip": False, "rotate90": False},
    # the photographic recipe: random resized crops (scale 0.2-1, resampled), blur and colour-style jitter
    "photographic": {"augment": {"crop": "resized", "blur_p": 0.5, "jitter_p": 0.8, "speckle_p": 0.5}},
    "resized-crop": {"augment": {"crop": "resized"}},
    # view size against the 224-px embedding field (same pixel scale, other windows)
    "views-64": {"image_size": 64},
    # the embedding transform: the published zero border instead of the mirrored one (random init embedded alike)
    "zero-border": {"transform": "wvnet"},
    # windows that reach into the field's border (half the side on the imagette)
    "border-0.5": {"augment": {"on_imagette": 0.5}},
    "views-160": {"image_size": 160},
    # loss and optimiser
    "temperature-0.2": {"temperature": 0.2},
    "temperature-0.5": {"temperature": 0.5},
    "lr-3e-4": {"lr": 3e-4},
    "lr-3e-3": {"lr": 3e-3},
    "batch-128": {"batch_size": 128},
}


def _embed(ds, encoder, device: str):
    import xwvnet

    return xwvnet.embed(ds, encoder=encoder, batch_size=32, device=device).compute()


def _scores(embedded, test: np.ndarray) -> dict:
    """Test-set RMSE and R^2 of a seeded ridge probe per target."""
    import xwvnet
    from xwvnet.evaluation.metrics import probe_scores

    out = {}
    for t in TARGETS:
        scores = probe_scores(embedded, xwvnet.fit_probe(embedded, t, train=~test, seed=0), test=test)
        out[t] = {"rmse": float(scores["rmse"]), "r2": float(scores["r2"])}
    return out


def _spread(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():6.3f} ({v.min():.3f}..{v.max():.3f})" if len(v) > 1 else f"{v.mean():6.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=["defaults"], help=f"cells to run, or 'all': {list(CELLS)}")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--seconds", type=float, default=600.0, help="max_seconds of each training run")
    parser.add_argument("--n-train", type=int, default=1024)
    parser.add_argument("--n-eval", type=int, default=768)
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="smoke run: seed 0, 20 s, 128 + 128 imagettes")
    parser.add_argument("--json", type=Path, default=None, help="write every figure to this file")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.seconds, args.n_train, args.n_eval = [0], 20.0, 128, 128
    cells = list(CELLS) if args.cells == ["all"] else args.cells
    unknown = sorted(set(cells) - set(CELLS))
    if unknown:
        parser.error(f"unknown cells {unknown}; expected some of {list(CELLS)} or 'all'")

    import torch

    import xwvnet
    from xwvnet.evaluation import image_statistics
    from xwvnet.models.encoder import Encoder
    from xwvnet.probe import split
    from xwvnet.training import train

    t0 = time.perf_counter()
    unlabelled = xwvnet.synthetic.imagettes(args.n_train, seed=0, size=(256, 256), chunks=128).compute()
    evaluation = xwvnet.synthetic.imagettes(args.n_eval, seed=1, size=(256, 256), chunks=128).compute()
    test = split(evaluation, test_size=0.5, seed=0)
    print(f"data: {args.n_train} training + {args.n_eval} probe imagettes of 256 x 256 in "
          f"{time.perf_counter() - t0:.0f} s; probes fit on {int((~test).sum())}, scored on {int(test.sum())}")

    results: dict = {"baselines": {}, "cells": {}, "seconds": args.seconds, "arch": args.arch}
    results["baselines"]["image statistics"] = _scores(image_statistics(evaluation).compute(), test)
    results["baselines"]["predict the mean"] = {
        t: {"rmse": float(np.std(evaluation[t].values[test])), "r2": 0.0} for t in TARGETS}
    from xwvnet.training.simclr import FRESH_TRANSFORM

    def random_init(seed: int, transform: str) -> dict:
        """The weights train() starts from with this seed, embedded through the trained encoder's transform."""
        key = (seed, transform)
        if key not in random_by_transform:
            encoder = Encoder(f"random-{args.arch}", args.arch, seed=seed, transform=transform)
            random_by_transform[key] = _scores(_embed(evaluation, encoder, args.device), test)
        return random_by_transform[key]

    random_by_transform: dict = {}
    random = {seed: random_init(seed, FRESH_TRANSFORM) for seed in args.seeds}
    results["random init"] = random

    with tempfile.TemporaryDirectory() as tmp:
        for cell in cells:
            runs = {}
            for seed in args.seeds:
                out = Path(tmp) / f"{cell}-{seed}"
                t1 = time.perf_counter()
                weights = train(unlabelled, out, arch=args.arch, seed=seed, max_seconds=args.seconds,
                                progress=False, device=args.device, **CELLS[cell])
                took = time.perf_counter() - t1
                meta = json.loads((out / "encoder.json").read_text())
                load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
                scores = _scores(_embed(evaluation, str(weights), args.device), test)
                base = random_init(seed, meta["transform"])
                # the other field border too, for the trained and the random encoder alike
                other = "wvnet-reflect" if meta["transform"] == "wvnet" else "wvnet"
                trained = xwvnet.load_encoder(str(weights))
                other_scores = _scores(_embed(evaluation, trained.replace(transform=other), args.device), test)
                runs[seed] = {"scores": scores, "steps": meta["steps_done"], "seconds": took, "load": load,
                              "final_loss": meta["final_loss"], "transform": meta["transform"],
                              "hs_ratio": scores["hs"]["rmse"] / base["hs"]["rmse"],
                              "other_transform": {"name": other, "scores": other_scores, "hs_ratio":
                                                  other_scores["hs"]["rmse"] / random_init(seed, other)["hs"]["rmse"]}}
                print(f"  {cell:16} seed {seed}: {meta['steps_done']} steps in {took:.0f} s (load {load:.1f}, "
                      f"torch threads {torch.get_num_threads()}), loss {meta['final_loss']:.3f}, hs RMSE "
                      f"{scores['hs']['rmse']:.3f} vs random init {base['hs']['rmse']:.3f} "
                      f"({meta['transform']}): ratio {runs[seed]['hs_ratio']:.2f}; with {other}: hs RMSE "
                      f"{other_scores['hs']['rmse']:.3f} vs {random_init(seed, other)['hs']['rmse']:.3f}, ratio "
                      f"{runs[seed]['other_transform']['hs_ratio']:.2f}", flush=True)
            results["cells"][cell] = runs

    print(f"\n{args.arch}, max_seconds={args.seconds:g}, seeds {args.seeds}; RMSE on held-out imagettes, mean "
          "(min..max) over seeds")
    header = f"{'encoder':18}" + "".join(f"{t:>24}" for t in TARGETS) + f"{'hs ratio per seed':>22}{'steps':>16}"
    print(header)
    for name, scores in results["baselines"].items():
        print(f"{name:18}" + "".join(f"{scores[t]['rmse']:24.3f}" for t in TARGETS))
    print(f"{'random init':18}" + "".join(f"{_spread([random[s][t]['rmse'] for s in args.seeds]):>24}"
                                         for t in TARGETS))
    for cell, runs in results["cells"].items():
        ratios = " ".join(f"{runs[s]['hs_ratio']:.2f}" for s in args.seeds)
        steps = " ".join(str(runs[s]["steps"]) for s in args.seeds)
        print(f"{cell:18}" + "".join(f"{_spread([runs[s]['scores'][t]['rmse'] for s in args.seeds]):>24}"
                                     for t in TARGETS) + f"{ratios:>22}{steps:>16}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
