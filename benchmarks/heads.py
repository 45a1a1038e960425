"""Heads beyond linear: does an MLP on embeddings plus image statistics beat the linear probes? Side by side in one run.

One run: synthetic imagettes with ground truth (``hs``, ``wind_speed``, ``peak_wavelength``; data seed 0), embedded
once by a random ResNet-18 (torchvision initialisation, seed 0) and described once by the image statistics of
:mod:`xwvnet.evaluation.baselines`. Then, for each seed (the seed of the train/test split and of the heads), five
heads per target, fitted with ``fit_head``'s defaults on the same training half and scored on the same test half:

- ridge on embeddings (``fit_head(model="ridge")``: the linear probe),
- ridge on image statistics,
- MLP on embeddings,
- MLP on image statistics and the incidence angle,
- MLP on embeddings plus image statistics and the incidence angle.

Prints the test RMSE of each (per seed, and mean), and the ratio MLP(embeddings + statistics) / best linear probe
for ``hs`` on each seed (target: <= 0.85 on every seed). Then a data-sparse curve for ``hs``: the same test half,
and random subsets of the training half of ``--labels`` imagettes (sizes above the training half are skipped: ask
for 10,000 labels with ``--n 20000``).

No trained ResNet-18 is used: training one costs tens of minutes on a CPU (``benchmarks/ssl_quality.py``), and the
published WV-Net weights need a download.

Usage::

    python benchmarks/heads.py            # 2,000 imagettes of 128 x 128, 3 seeds (about half an hour on 2 cores)
    python benchmarks/heads.py --quick    # 512 imagettes, 1 seed, no curve
    python benchmarks/heads.py --embedded /tmp/heads.nc   # keep the embedded imagettes to run the heads again
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

TARGETS = ("hs", "wind_speed", "peak_wavelength")
HEADS = ("ridge emb", "ridge stats", "mlp emb", "mlp stats", "mlp emb+stats")
INPUTS = {
    "ridge emb": ("ridge", ("embedding",)),
    "ridge stats": ("ridge", ("statistics",)),
    "mlp emb": ("mlp", ("embedding",)),
    "mlp stats": ("mlp", ("statistics", "incidence_angle")),
    "mlp emb+stats": ("mlp", ("embedding", "statistics", "incidence_angle")),
}
CURVE_HEADS = ("ridge emb", "ridge stats", "mlp emb+stats")


def _embedded(n: int, size: int, path: Path | None):  # noqa: ANN202 (an xarray.Dataset; xarray imported late)
    """The imagettes with their embeddings and statistics (no pixels), read from ``path`` when it holds them."""
    import xarray as xr

    import xwvnet
    from xwvnet.evaluation.baselines import image_statistics
    from xwvnet.models.encoder import Encoder

    if path is not None and path.exists():
        ds = xr.open_dataset(path).load()
        if ds.sizes["imagette"] >= n and ds.attrs.get("imagette_size") == size:
            print(f"{n} embedded imagettes read from {path}")
            return ds.isel(imagette=slice(0, n))  # imagette i does not depend on n
    t0 = time.perf_counter()
    ds = xwvnet.synthetic.imagettes(n, seed=0, size=(size, size), chunks=128).compute()
    encoder = Encoder("random ResNet-18 (seed 0)", "resnet18", seed=0)
    ds = xwvnet.embed(ds, encoder=encoder, batch_size=32).compute()
    ds["statistics"] = image_statistics(ds)["embedding"].rename(feature="statistic").compute()
    ds = ds.drop_vars(["quicklook"]).assign_attrs(imagette_size=size)
    print(
        f"{n} imagettes of {size} x {size}, embedded (random ResNet-18) and described in "
        f"{time.perf_counter() - t0:.0f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    if path is not None:
        ds.to_netcdf(path)
    return ds


def _rmse(ds, target: str, name: str, train: np.ndarray, test: np.ndarray, seed: int) -> float:  # noqa: ANN001
    import xwvnet

    model, features = INPUTS[name]
    head = xwvnet.fit_head(ds, target, features=features, model=model, train=train, seed=seed)
    pred = xwvnet.predict(ds, head)[f"{target}_predicted"].values[test]
    return float(np.sqrt(np.mean((pred - ds[target].values[test]) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="imagettes (half to fit, half to score)")
    parser.add_argument("--size", type=int, default=128, help="lines and samples of each imagette")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--labels",
        nargs="*",
        type=int,
        default=[100, 300, 1000, 10000],
        help="training sizes of the data-sparse curve (hs)",
    )
    parser.add_argument("--embedded", type=Path, help="netCDF file to keep the embedded imagettes in (and read)")
    parser.add_argument("--quick", action="store_true", help="512 imagettes, seed 0, no curve")
    args = parser.parse_args()
    if args.quick:
        args.n, args.seeds, args.labels = 512, [0], []

    from xwvnet.probe import split

    ds = _embedded(args.n, args.size, args.embedded)
    rmse: dict[tuple[str, str], list[float]] = {}
    t1 = time.perf_counter()
    for seed in args.seeds:
        test = split(ds, test_size=0.5, seed=seed)
        for target in TARGETS:
            for name in HEADS:
                rmse.setdefault((target, name), []).append(_rmse(ds, target, name, ~test, test, seed))
    print(
        f"{len(args.seeds) * len(TARGETS) * len(HEADS)} heads fitted and scored in {time.perf_counter() - t1:.0f} s"
        f"; load average {os.getloadavg()[0]:.1f}\n"
    )

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
    print(
        f"\nhs: MLP(emb+stats) / best linear probe per seed: {' '.join(f'{r:.2f}' for r in ratios)} "
        f"(target <= 0.85 on every seed: {verdict})"
    )

    pool = args.n - int(round(0.5 * args.n))
    sizes = [s for s in args.labels if s < pool]
    skipped = [s for s in args.labels if s > pool]
    if not sizes:
        return
    print(
        f"\nhs test RMSE against labelled imagettes (random subsets of the training half of {pool}; mean over "
        f"seeds {args.seeds}){'; skipped, above the training half: ' + str(skipped) if skipped else ''}"
    )
    print(f"{'labels':>8}" + "".join(f"{name:>15}" for name in CURVE_HEADS) + f"{'ratio':>8}")
    for size in [*sizes, pool]:
        scores = {name: [] for name in CURVE_HEADS}
        for seed in args.seeds:
            test = split(ds, test_size=0.5, seed=seed)
            rows = np.random.default_rng(seed).permutation(np.flatnonzero(~test))[:size]
            train = np.zeros(args.n, dtype=bool)
            train[rows] = True
            for name in CURVE_HEADS:
                scores[name].append(
                    _rmse(ds, "hs", name, train, test, seed)
                    if size < pool
                    else rmse[("hs", name)][args.seeds.index(seed)]
                )
        means = {name: float(np.mean(v)) for name, v in scores.items()}
        ratio = means["mlp emb+stats"] / min(means["ridge emb"], means["ridge stats"])
        print(f"{size:>8}" + "".join(f"{means[name]:15.3f}" for name in CURVE_HEADS) + f"{ratio:8.2f}")


if __name__ == "__main__":
    main()
