"""Heads beyond linear: does an MLP on embeddings plus image statistics beat the linear probes? Side by side in one run.

One run: synthetic imagettes with ground truth (``hs``, ``wind_speed``, ``peak_wavelength``; data seed 0), embedded
once by a random ResNet-18 (torchvision initialisation, seed 0) and described once by the image statistics of
:mod:`xwvnet.evaluation.baselines`. Then, for each seed (the seed of the train/test split and of the heads), four
heads per target, fitted on the same training half and scored on the same test half:

- ridge on embeddings (``fit_head(model="ridge")``: the linear probe),
- ridge on image statistics,
- MLP on embeddings,
- MLP on image statistics and the incidence angle,
- MLP on embeddings plus image statistics and the incidence angle.

Prints the test RMSE of each (per seed, and mean), and the ratio MLP(embeddings + statistics) / best linear probe
for ``hs`` on each seed (target: <= 0.85 on every seed). No trained ResNet-18 is used: training one costs tens of
minutes on a CPU (``benchmarks/ssl_quality.py``), and the published WV-Net weights need a download.

Usage::

    python benchmarks/heads.py            # 768 imagettes of 128 x 128, 3 seeds (a few minutes on 2 cores)
    python benchmarks/heads.py --quick    # 256 imagettes, 1 seed
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

TARGETS = ("hs", "wind_speed", "peak_wavelength")
HEADS = ("ridge emb", "ridge stats", "mlp emb", "mlp stats", "mlp emb+stats")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=768, help="imagettes (half to fit, half to score)")
    parser.add_argument("--size", type=int, default=128, help="lines and samples of each imagette")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="256 imagettes, seed 0")
    args = parser.parse_args()
    if args.quick:
        args.n, args.seeds = 256, [0]

    import xwvnet
    from xwvnet.evaluation.baselines import image_statistics
    from xwvnet.heads import fit_head
    from xwvnet.models.encoder import Encoder
    from xwvnet.probe import split

    t0 = time.perf_counter()
    ds = xwvnet.synthetic.imagettes(args.n, seed=0, size=(args.size, args.size), chunks=128).compute()
    encoder = Encoder("random ResNet-18 (seed 0)", "resnet18", seed=0)
    ds = xwvnet.embed(ds, encoder=encoder, batch_size=32).compute()
    ds["statistics"] = image_statistics(ds)["embedding"].rename(feature="statistic").compute()
    print(f"{args.n} imagettes of {args.size} x {args.size}, embedded (random ResNet-18) and described in "
          f"{time.perf_counter() - t0:.0f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    inputs = {"ridge emb": ("ridge", ("embedding",)), "ridge stats": ("ridge", ("statistics",)),
              "mlp emb": ("mlp", ("embedding",)), "mlp stats": ("mlp", ("statistics", "incidence_angle")),
              "mlp emb+stats": ("mlp", ("embedding", "statistics", "incidence_angle"))}
    rmse: dict[tuple[str, str], list[float]] = {}
    t1 = time.perf_counter()
    for seed in args.seeds:
        test = split(ds, test_size=0.5, seed=seed)
        for target in TARGETS:
            truth = ds[target].values[test]
            for name, (model, features) in inputs.items():
                head = fit_head(ds, target, features=features, model=model, train=~test, seed=seed)
                pred = xwvnet.predict(ds, head)[f"{target}_predicted"].values[test]
                rmse.setdefault((target, name), []).append(float(np.sqrt(np.mean((pred - truth) ** 2))))
    print(f"{len(args.seeds) * len(TARGETS) * len(HEADS)} heads fitted and scored in {time.perf_counter() - t1:.0f} s"
          f"; load average {os.getloadavg()[0]:.1f}\n")

    seeds = " ".join(f"{'seed ' + str(s):>8}" for s in args.seeds)
    print(f"{'target':<16}{'head':<15}{seeds}{'mean':>9}  (test RMSE; std of the target)")
    for target in TARGETS:
        spread = float(ds[target].std())
        for name in HEADS:
            values = rmse[(target, name)]
            row = " ".join(f"{v:8.3f}" for v in values)
            print(f"{target:<16}{name:<15}{row}{np.mean(values):9.3f}  ({spread:.3f})")
    best_linear = np.minimum(rmse[("hs", "ridge emb")], rmse[("hs", "ridge stats")])
    ratios = np.asarray(rmse[("hs", "mlp emb+stats")]) / best_linear
    verdict = "met" if (ratios <= 0.85).all() else "NOT met"
    print(f"\nhs: MLP(emb+stats) / best linear probe per seed: {' '.join(f'{r:.2f}' for r in ratios)} "
          f"(target <= 0.85 on every seed: {verdict})")


if __name__ == "__main__":
    main()
