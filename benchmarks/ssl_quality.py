"""Does SimCLR training learn? Linear-probe RMSE of trained encoders against the same architecture at random init.

One run, per *data draw* ``d``: 1,024 synthetic imagettes of 256 x 256 (ground-truth ``hs``, ``wind_speed``,
``peak_wavelength``; data seed ``2d``) -> ``xwvnet.train(arch="resnet18", max_seconds=...)`` per seed and per
*cell* (a set of arguments changed from the defaults) -> embed a *separate* set (data seed ``2d + 1``) with each
trained encoder through its own saved transform (``encoder.json``) -> seeded ridge probes on half of it, scored on
the other half. Two random-init baselines per seed: the weights ``train()`` starts from with their own batch-norm
statistics, and the same weights with statistics re-estimated on embedding inputs of the training imagettes (as
``train()`` does for the encoders it saves); a run's hs ratio is against the better of the two. Beside them: the
non-learned image-statistics baseline and "predict the mean" (the spread of the targets). Prints, per draw and
cell, the RMSE of each target (mean and min..max over seeds), the hs ratio of every seed, the steps every run
reached (a loaded machine reaches fewer in the same time; the load average is printed), and the worst ratio of
each cell over all draws and seeds.

``--steps N`` runs every cell for a fixed schedule of ``N`` steps with no time limit instead (a cell's own
``steps`` wins): figures that do not depend on the machine or its load, which is what an ablation compares.
``--json`` is rewritten after every run, and ``--resume`` skips the runs a previous ``--json`` file already holds,
so a long ablation can be stopped and continued.

Usage::

    python benchmarks/ssl_quality.py                          # the defaults: 2 draws x 3 seeds, 600 s each (~70 min)
    python benchmarks/ssl_quality.py --cells all --steps 150 --json ablation.json  # the ablation (hours)
    python benchmarks/ssl_quality.py --report ablation.json    # its Markdown table
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
    # augmentations, each switched against the defaults (windows of the embedding field at its pixel scale; no flips
    # or 90-degree turns, no speckle, no blur, no radiometric jitter)
    "+speckle": {"augment": {"speckle_p": 0.5}},
    "+blur": {"augment": {"blur_p": 0.5}},
    "+jitter": {"augment": {"jitter_p": 0.8}},
    "flip-rotate": {"flip": True, "rotate90": True},
    # the photographic recipe: random resized crops (area 0.2-1 of the imagette, resampled to the view), blur,
    # colour-style jitter and speckle
    "photographic": {"augment": {"crop": "resized", "blur_p": 0.5, "jitter_p": 0.8, "speckle_p": 0.5}},
    "resized-crop": {"augment": {"crop": "resized"}},
    # windows that reach into the field's border (half the side on the imagette)
    "border-0.5": {"augment": {"on_imagette": 0.5}},
    # loss and optimiser
    "temperature-0.2": {"temperature": 0.2},
    "temperature-0.5": {"temperature": 0.5},
    "lr-3e-4": {"lr": 3e-4},
    "lr-3e-3": {"lr": 3e-3},
    # view size against the 224-px embedding field (same pixel scale, other windows; cost grows with the area)
    "views-32": {"image_size": 32},
    "views-96": {"image_size": 96},
    "batch-128": {"batch_size": 128},
    # the saved encoder's batch-norm statistics: those of the training views instead of embedding inputs
    "bn-views": {"bn_imagettes": 0},
    # the length of the schedule (twice the --steps of the other cells, or of the default steps)
    "steps-x2": {"steps_factor": 2},
    "views-160": {"image_size": 160},
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


def _random_with_bn(arch: str, seed: int, transform: str, unlabelled):
    """The weights ``train()`` starts from with this seed, batch-norm statistics re-estimated on embedding inputs of
    the training imagettes (``bn_imagettes`` of them, as ``train()`` does for the encoders it saves)."""
    import dataclasses

    from xwvnet.models.encoder import Encoder
    from xwvnet.training.batchnorm import calibration_index, reestimate_batch_norm
    from xwvnet.training.loader import chunk_starts, read_imagettes
    from xwvnet.training.simclr import TrainConfig

    n = next(f.default for f in dataclasses.fields(TrainConfig) if f.name == "bn_imagettes")
    encoder = Encoder(f"random-{arch}", arch, seed=seed, transform=transform)
    module = encoder.build()
    index = calibration_index(chunk_starts(unlabelled, "quicklook"), n, seed)

    def inputs():
        for i in range(0, len(index), 32):
            yield encoder.preprocess(*read_imagettes(unlabelled, "quicklook", index[i:i + 32]))

    reestimate_batch_norm(module, inputs())
    return Encoder.from_module(module, name=f"random-{arch}-bn", transform=transform)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=["defaults"], help=f"cells to run, or 'all': {list(CELLS)}")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--draws", nargs="+", type=int, default=[0, 1],
                        help="data draws: draw d trains on synthetic seed 2d and probes on seed 2d + 1")
    parser.add_argument("--seconds", type=float, default=600.0, help="max_seconds of each training run")
    parser.add_argument("--steps", type=int, default=None,
                        help="a fixed schedule of this many steps per run, without a time limit (for ablations)")
    parser.add_argument("--no-other-border", action="store_true",
                        help="score each encoder through its saved transform only")
    parser.add_argument("--resume", action="store_true", help="keep the runs the --json file already holds")
    parser.add_argument("--n-train", type=int, default=1024)
    parser.add_argument("--n-eval", type=int, default=768)
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="smoke run: seed 0, draw 0, 20 s, 128 + 128 imagettes")
    parser.add_argument("--json", type=Path, default=None, help="write every figure to this file")
    parser.add_argument("--report", type=Path, default=None,
                        help="run nothing: print the Markdown table of a --json file (as docs/training.md has it)")
    args = parser.parse_args()
    if args.report:
        print(markdown_table(json.loads(args.report.read_text())))
        return
    if args.quick:
        args.seeds, args.draws, args.seconds, args.n_train, args.n_eval = [0], [0], 20.0, 128, 128
    cells = list(CELLS) if args.cells == ["all"] else args.cells
    unknown = sorted(set(cells) - set(CELLS))
    if unknown:
        parser.error(f"unknown cells {unknown}; expected some of {list(CELLS)} or 'all'")
    if args.resume and not (args.json and args.json.exists()):
        parser.error("--resume needs an existing --json file")

    import torch

    import xwvnet
    from xwvnet.evaluation import image_statistics
    from xwvnet.models.encoder import Encoder
    from xwvnet.probe import split
    from xwvnet.training import train
    from xwvnet.training.simclr import DEFAULT_STEPS, FRESH_TRANSFORM

    results: dict = {"draws": {}, "seconds": None if args.steps else args.seconds, "steps": args.steps,
                     "arch": args.arch, "cpu": _cpu()}
    if args.resume:
        previous = json.loads(args.json.read_text())
        if (previous.get("steps"), previous.get("seconds"), previous.get("arch")) != (
                results["steps"], results["seconds"], results["arch"]):
            parser.error(f"{args.json} holds runs of other settings (steps {previous.get('steps')}, seconds "
                         f"{previous.get('seconds')}, arch {previous.get('arch')}); choose another --json")
        results["draws"] = previous.get("draws", {})

    def save() -> None:
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))

    for draw in args.draws:
        t0 = time.perf_counter()
        unlabelled = xwvnet.synthetic.imagettes(args.n_train, seed=2 * draw, size=(256, 256), chunks=128).compute()
        evaluation = xwvnet.synthetic.imagettes(args.n_eval, seed=2 * draw + 1, size=(256, 256),
                                                chunks=128).compute()
        test = split(evaluation, test_size=0.5, seed=0)
        print(f"draw {draw}: {args.n_train} training (seed {2 * draw}) + {args.n_eval} probe (seed {2 * draw + 1}) "
              f"imagettes of 256 x 256 in {time.perf_counter() - t0:.0f} s; probes fit on {int((~test).sum())}, "
              f"scored on {int(test.sum())}", flush=True)
        block = results["draws"].setdefault(str(draw), {"cells": {}})
        block["baselines"] = {
            "image statistics": _scores(image_statistics(evaluation).compute(), test),
            "predict the mean": {t: {"rmse": float(np.std(evaluation[t].values[test])), "r2": 0.0} for t in TARGETS},
        }
        randoms: dict = {}

        def random_init(seed: int, transform: str, draw_data=unlabelled, evaluation=evaluation, test=test,
                        randoms=randoms) -> dict:
            """Both random-init baselines of this seed through this transform, and the better one's hs RMSE."""
            key = (seed, transform)
            if key not in randoms:
                own = Encoder(f"random-{args.arch}", args.arch, seed=seed, transform=transform)
                bn = _random_with_bn(args.arch, seed, transform, draw_data)
                scores = {"own statistics": _scores(_embed(evaluation, own, args.device), test),
                          "re-estimated statistics": _scores(_embed(evaluation, bn, args.device), test)}
                scores["better hs"] = min(s["hs"]["rmse"] for s in scores.values())
                randoms[key] = scores
            return randoms[key]

        block["random init"] = {seed: random_init(seed, FRESH_TRANSFORM) for seed in args.seeds}
        save()
        with tempfile.TemporaryDirectory() as tmp:
            for cell in cells:
                runs = block["cells"].setdefault(cell, {})
                for seed in args.seeds:
                    if str(seed) in runs or seed in runs:
                        print(f"  {cell:16} draw {draw} seed {seed}: kept from {args.json}", flush=True)
                        continue
                    out = Path(tmp) / f"{cell}-{seed}"
                    settings = dict(CELLS[cell])
                    factor = settings.pop("steps_factor", 1)
                    if args.steps:
                        settings.setdefault("steps", args.steps * factor)
                    elif factor != 1:
                        settings["steps"] = DEFAULT_STEPS * factor
                    limit = None if args.steps else args.seconds
                    t1 = time.perf_counter()
                    weights = train(unlabelled, out, arch=args.arch, seed=seed, max_seconds=limit,
                                    progress=False, device=args.device, **settings)
                    took = time.perf_counter() - t1
                    meta = json.loads((out / "encoder.json").read_text())
                    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
                    scores = _scores(_embed(evaluation, str(weights), args.device), test)
                    base = random_init(seed, meta["transform"])["better hs"]
                    run = {"scores": scores, "steps": meta["steps_done"], "seconds": took, "load": load,
                           "final_loss": meta["final_loss"], "transform": meta["transform"],
                           "hs_ratio": scores["hs"]["rmse"] / base}
                    line = (f"  {cell:16} draw {draw} seed {seed}: {meta['steps_done']} steps in {took:.0f} s "
                            f"(load {load:.1f}, torch threads {torch.get_num_threads()}), loss "
                            f"{meta['final_loss']:.3f}, hs RMSE {scores['hs']['rmse']:.3f} vs the better random "
                            f"init {base:.3f} ({meta['transform']}): ratio {run['hs_ratio']:.2f}")
                    if not args.no_other_border:
                        # the other field border too, for the trained and the random encoder alike
                        other = "wvnet-reflect" if meta["transform"] == "wvnet" else "wvnet"
                        trained = xwvnet.load_encoder(str(weights))
                        other_scores = _scores(_embed(evaluation, trained.replace(transform=other), args.device),
                                               test)
                        other_base = random_init(seed, other)["better hs"]
                        run["other_transform"] = {"name": other, "scores": other_scores,
                                                  "hs_ratio": other_scores["hs"]["rmse"] / other_base}
                        line += (f"; with {other}: hs RMSE {other_scores['hs']['rmse']:.3f} vs {other_base:.3f}, "
                                 f"ratio {run['other_transform']['hs_ratio']:.2f}")
                    runs[seed] = run
                    print(line, flush=True)
                    save()
    save()
    print("\n" + markdown_table(results))


def _describe(settings: dict) -> str:
    """A cell's changes from the defaults, as train() keywords."""
    if not settings:
        return "the defaults"
    return ", ".join(f"`{k}={v!r}`" if k != "steps_factor" else f"{v}x the steps" for k, v in settings.items())


def markdown_table(results: dict) -> str:
    """The figures of one run (the dict ``--json`` writes) as a Markdown table: mean (min..max) over seeds.

    Parameters
    ----------
    results : dict
        What ``--json`` holds: per data draw, the baselines, both random inits per seed and the runs per cell and
        seed.

    Returns
    -------
    str
        The table, one block of rows per draw (baselines, random inits, cells), and per cell the worst hs ratio and
        how many runs beat the image statistics on hs.
    """
    def cellwise(runs: list[dict], target: str) -> str:
        return _spread([r["scores"][target]["rmse"] for r in runs]).strip()

    budget = f"{results['steps']} steps" if results.get("steps") else f"max_seconds={results['seconds']:g}"
    lines = [f"{results['arch']}, {budget} per run, {results.get('cpu', 'CPU not recorded')}; probe RMSE on "
             "held-out imagettes, mean (min..max) over seeds; hs ratio: trained / the better random init of the "
             "same seed", "",
             "| draw | run | changes | hs (m) | wind speed (m/s) | peak wavelength (m) | hs ratio per seed | steps "
             "| s/step |", "|---|---|---|---|---|---|---|---|---|"]
    worst: dict[str, list[float]] = {}
    over: dict[str, list[float]] = {}  # hs RMSE / the image statistics' of the same draw, per run
    for draw, block in results["draws"].items():
        for name, scores in block["baselines"].items():
            rmse = " | ".join(f"{scores[t]['rmse']:.3f}" for t in TARGETS)
            lines.append(f"| {draw} | {name} | | {rmse} | | | |")
        for kind in ("own statistics", "re-estimated statistics"):
            random = [{"scores": r[kind]} for r in block["random init"].values()]
            lines.append(f"| {draw} | random init, {kind} | same seeds | "
                         f"{' | '.join(cellwise(random, t) for t in TARGETS)} | | 0 | |")
        for cell, runs in block["cells"].items():
            done = list(runs.values())
            if not done:
                continue
            worst.setdefault(cell, []).extend(r["hs_ratio"] for r in done)
            statistics = block["baselines"]["image statistics"]["hs"]["rmse"]
            over.setdefault(cell, []).extend(r["scores"]["hs"]["rmse"] / statistics for r in done)
            ratios = ", ".join(f"{r['hs_ratio']:.2f}" for r in done)
            steps = sorted({r["steps"] for r in done})
            per_step = np.mean([r["seconds"] / max(1, r["steps"]) for r in done])
            lines.append(f"| {draw} | {cell} | {_describe(CELLS.get(cell, {}))} | "
                         f"{' | '.join(cellwise(done, t) for t in TARGETS)} | {ratios} | "
                         f"{', '.join(map(str, steps))} | {per_step:.2f} |")
    lines.append("")
    lines.extend(f"{cell}: worst hs ratio over {len(r)} runs {max(r):.2f}; hs below the image statistics in "
                 f"{sum(x < 1 for x in over[cell])} of them (worst {max(over[cell]):.2f}x their RMSE)"
                 for cell, r in worst.items())
    return "\n".join(lines)


def _cpu() -> str:
    """The CPU model and whether it computes bfloat16 natively (figures depend on both)."""
    import platform

    name = platform.processor() or platform.machine()
    try:
        info = Path("/proc/cpuinfo").read_text()
        name = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
        name += ", AVX-512 BF16" if "avx512_bf16" in info else ", no AVX-512 BF16"
    except (OSError, StopIteration):
        pass
    return f"{name}, {os.cpu_count()} cores"


if __name__ == "__main__":
    main()
