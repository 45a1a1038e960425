"""Retrieval at archive scale, side by side with faiss in the same run: exact top-10 search, the approximate index,
compact embeddings.

    python benchmarks/retrieval.py            # N = 1e4 .. 2e5 exact, 1e4 .. 5e4 index (a few minutes on 2 cores)
    python benchmarks/retrieval.py --quick    # tiny
    python benchmarks/retrieval.py --full     # exact up to N = 1e6 (8 GB for faiss's copy), index up to 2e5

Exact: 1024 unit queries x N x 2048 float32, k = 10. ``xwvnet.retrieval.exact.search_arrays`` (what ``search`` and
``neighbors`` run on numpy input) against faiss ``IndexFlatIP`` and a plain numpy matmul of the same shapes,
interleaved, best of 2 each; every N in a fresh process so that its peak resident memory is its own (ours runs
first: its peak is ours; faiss's increment is its copy of the database, 0 when below our peak).
Index: a Gaussian mixture (clustered) and isotropic noise (unclustered) written to an embedding store, indexed by
``build_index`` (chunk by chunk) and, in the same process, by faiss directly on the in-memory array with the same
factory string; recall@10 against exact search on 1000 stored queries (self excluded) and queries per second.
Compact: top-10 agreement with float32 and ridge-probe RMSE for float16 and int8 embeddings.

    python benchmarks/retrieval.py --scaling [--sizes 100000 300000 1000000]

Scaling (issue 32): the default index (``build_index`` with build-time tuning to recall@10 0.95) on 2,000-cluster
mixtures of 2048-d unit vectors, stored as float16 (made in blocks: 1e6 x 2048 is 4 GB so), each N in a fresh
process: recall@10 of 1024 queries drawn like the data but not in it (so never in the tuning sample) against exact
search on the same data, build time, query time of the 1024 queries through the index and by exact search (timed
on the data in float32, converted 1 GB at a time outside the timer: see ``exact_float32``), index size, peak
memory; then each
extrapolated to 12 million imagettes (a fit in log N, said as such). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

POOL = 8  # distinct random blocks the exact-search database cycles through (generating 1e6 x 2048 takes long)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_one(n: int, queries: int, dim: int, k: int) -> dict:
    """Ours, faiss IndexFlatIP and a numpy matmul on the same database and queries, interleaved."""
    from xwvnet.retrieval.exact import search_arrays

    rng = np.random.default_rng(0)
    block = 8192
    pool = [_unit(rng.standard_normal((block, dim), dtype=np.float32)) for _ in range(min(POOL, -(-n // block)))]
    xb = np.concatenate([pool[i % len(pool)] for i in range(-(-n // block))])[:n]
    xq = _unit(rng.standard_normal((queries, dim), dtype=np.float32))
    search_arrays(xq[:8], xq[:64], 3)  # warm-up
    base = _rss_mb()
    out: dict = {"n": n}
    times: dict[str, list[float]] = {"ours": [], "faiss": [], "matmul": []}
    try:
        import faiss

        flat = None
    except ImportError:
        faiss = None
    for round_ in range(2):
        start = time.perf_counter()
        sim, idx = search_arrays(xq, xb, k)
        times["ours"].append(time.perf_counter() - start)
        if round_ == 0:
            out["ours_peak_mb"] = _rss_mb() - base
        if faiss is not None:
            before = _rss_mb()
            if flat is None:
                flat = faiss.IndexFlatIP(dim)
                flat.add(xb)
            start = time.perf_counter()
            fsim, fidx = flat.search(xq, k)
            times["faiss"].append(time.perf_counter() - start)
            if round_ == 0:
                out["faiss_extra_mb"] = _rss_mb() - before
                out["same"] = bool(np.allclose(fsim, sim, atol=1e-5))
        start = time.perf_counter()
        for a in range(0, n, block):
            xq @ xb[a:a + block].T
        times["matmul"].append(time.perf_counter() - start)
    out.update({f"{name}_s": min(t) if t else None for name, t in times.items()})
    return out


def mixture(n: int, dim: int, clustered: bool, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if not clustered:
        return _unit(rng.standard_normal((n, dim), dtype=np.float32))
    centres = rng.standard_normal((100, dim), dtype=np.float32)
    out = np.empty((n, dim), np.float32)
    for a in range(0, n, 8192):  # bounded temporaries
        b = min(n, a + 8192)
        out[a:b] = _unit(centres[rng.integers(0, 100, b - a)] + rng.standard_normal((b - a, dim), dtype=np.float32))
    return out


def write_store(path: Path, x: np.ndarray, chunk: int = 4096) -> None:
    import xarray as xr

    from xwvnet.io import store as zs
    from xwvnet.io.storage import locate

    ids = np.array([f"im{i:08d}" for i in range(len(x))], dtype=object)
    source = xr.Dataset(coords={"imagette": ids})
    attrs = {"encoder": "benchmark", "encoder_weights_hash": "none"}
    loc = locate(path)
    zs.extend_embedding_store(loc, source, chunk_size=chunk, dim=x.shape[1], attrs=attrs, embedding_attrs=attrs)
    writer = zs.EmbeddingWriter(loc, every=float("inf"))
    for c, a in enumerate(range(0, len(x), chunk)):
        writer.merge(zs.write_embedding_rows(writer.fork(), c, a, a, x[a:a + chunk]), c)
    writer.commit()


def index_one(n: int, dim: int, k: int, clustered: bool) -> dict:
    import faiss

    from xwvnet.retrieval import build_index
    from xwvnet.retrieval.index import REFINE_FACTOR, index_path

    x = mixture(n, dim, clustered)
    nq = min(1000, n)
    q = x[:nq]
    flat = faiss.IndexFlatIP(dim)
    flat.add(x)
    start = time.perf_counter()
    _, ref = flat.search(q, k + 1)
    exact_s = time.perf_counter() - start
    del flat
    out: dict = {"n": n, "clustered": clustered, "exact_qps": nq / exact_s}
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "emb.zarr"
        write_store(store, x)
        base = _rss_mb()
        start = time.perf_counter()
        index = build_index(store)
        out["ours_build_s"] = time.perf_counter() - start
        out["ours_build_peak_mb"] = _rss_mb() - base
        out["index_mb"] = index_path(store).stat().st_size / 2**20
        out["factory"], out["effort"] = index.info["factory"], index.effort
        start = time.perf_counter()
        _, got = index.search(q, k + 1)
        out["ours_qps"] = nq / (time.perf_counter() - start)
    # faiss directly on the in-memory array, same factory (without the id map), training size, effort, re-ranking
    direct = faiss.index_factory(dim, out["factory"].removeprefix("IDMap,"), faiss.METRIC_INNER_PRODUCT)
    start = time.perf_counter()
    direct.train(x[np.random.default_rng(0).permutation(n)[:65536]])
    direct.add(x)
    out["faiss_build_s"] = time.perf_counter() - start
    if "Refine" in out["factory"]:
        faiss.downcast_index(direct).k_factor = REFINE_FACTOR
        inner = faiss.downcast_index(faiss.downcast_index(direct).base_index)
    else:
        inner = faiss.downcast_index(direct)
    if hasattr(inner, "hnsw"):
        inner.hnsw.efSearch = out["effort"]
    else:
        faiss.extract_index_ivf(inner).nprobe = out["effort"]
    start = time.perf_counter()
    _, dgot = direct.search(q, k + 1)
    out["faiss_qps"] = nq / (time.perf_counter() - start)

    def recall(found: np.ndarray) -> float:
        hits = [len((set(f) - {i}) & (set(r) - {i})) / k for i, (f, r) in enumerate(zip(found, ref, strict=True))]
        return float(np.mean(hits))

    out["ours_recall"], out["faiss_recall"] = recall(got), recall(dgot)
    return out


def compact(n: int, dim: int, k: int) -> list[dict]:
    """Top-k agreement with float32 and ridge-probe RMSE, for float16 and int8, on clustered embeddings."""
    import xarray as xr
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import train_test_split

    from xwvnet.retrieval import compact_embeddings, decode_embeddings, neighbors

    rng = np.random.default_rng(1)
    x = mixture(n, dim, True, seed=1) * rng.uniform(0.5, 2.0, (n, 1)).astype(np.float32)  # not unit length
    target = x @ rng.standard_normal(dim).astype(np.float32) + 0.05 * rng.standard_normal(n).astype(np.float32)
    ids = np.array([f"im{i:06d}" for i in range(n)], dtype=object)
    ds = xr.Dataset({"embedding": (("imagette", "feature"), x)}, coords={"imagette": ids})
    queries = list(ids[:500])
    exact = neighbors(ds, k=k, query=queries)["neighbor"].values
    train, test = train_test_split(np.arange(n), test_size=0.3, random_state=0)

    def rmse(values: np.ndarray) -> float:
        model = RidgeCV(alphas=np.logspace(-3, 3, 7)).fit(values[train], target[train])
        return float(np.sqrt(np.mean((model.predict(values[test]) - target[test]) ** 2)))

    rows = [{"dtype": "float32", "bytes": 4, "agreement": 1.0, "rmse": rmse(x)}]
    for dtype in ("float16", "int8"):
        small = compact_embeddings(ds, dtype)
        found = neighbors(small, k=k, query=queries)["neighbor"].values
        agree = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, exact, strict=True)]))
        rows.append({"dtype": dtype, "bytes": np.dtype(dtype).itemsize, "agreement": agree,
                     "rmse": rmse(decode_embeddings(small)["embedding"].values)})
    return rows


def clusters2000(n: int, dim: int, seed: int = 0, spread: float = 1.0, queries: int = 0,
                 dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors around 2,000 random centres (noise of std ``spread`` per feature), made in blocks of 8192
    and stored as ``dtype``; and ``queries`` more float32 vectors drawn the same way (not in the data)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2000, dim), dtype=np.float32)
    out = np.empty((n, dim), dtype)
    for a in range(0, n, 8192):
        b = min(n, a + 8192)
        noise = spread * rng.standard_normal((b - a, dim), dtype=np.float32)
        out[a:b] = _unit(centres[rng.integers(0, 2000, b - a)] + noise)
    noise = spread * rng.standard_normal((queries, dim), dtype=np.float32)
    return out, _unit(centres[rng.integers(0, 2000, queries)] + noise)


def exact_float32(q: np.ndarray, x: np.ndarray, k: int, block: int = 131_072) -> tuple[np.ndarray, float]:
    """Exact top-``k`` of float16 data, and the time exact search takes on the same data in float32: each block of
    ``block`` rows (1 GB) is converted to float32 untimed, then searched by ``search_arrays`` (timed); the blocks'
    candidates are merged. Exact search on float16 arrays is slower (it converts block pairs as it goes), and
    in float32 it is what the index must beat."""
    from xwvnet.retrieval.exact import search_arrays

    search_arrays(q[:8], np.asarray(x[:4096], np.float32), k)  # warm-up
    sims, ids, seconds = [], [], 0.0
    for a in range(0, len(x), block):
        part = np.asarray(x[a:a + block], np.float32)
        start = time.perf_counter()
        sim, idx = search_arrays(q, part, k)
        seconds += time.perf_counter() - start
        sims.append(sim)
        ids.append(idx + a)
    sim, idx = np.concatenate(sims, axis=1), np.concatenate(ids, axis=1)
    best = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(idx, best, 1), seconds


def scaling_one(n: int, dim: int, k: int, spread: float = 1.0, queries: int = 1024) -> dict:
    """The default index (built and tuned by ``build_index``) against exact search on the same float16 data, one
    process: recall@k on queries drawn like the data (none of them indexed, so none in the tuning sample), build
    and query time, peak memory."""
    import warnings

    import xarray as xr

    from xwvnet.retrieval import build_index

    def say(what: str) -> None:
        print(f"  [{n}] {what} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    x, q = clusters2000(n, dim, spread=spread, queries=queries, dtype="float16")
    say(f"{n} x {dim} float16 generated")
    base = _rss_mb()
    out: dict = {"n": n, "queries": queries, "storage": "float16", "data_mb": x.nbytes / 2**20}
    truth, out["exact_s"] = exact_float32(q, x, k)
    out["exact_peak_mb"] = _rss_mb() - base
    say(f"exact search {out['exact_s']:.1f} s")
    ids = np.array([f"im{i:08d}" for i in range(n)], dtype=object)
    attrs = {"encoder": "benchmark", "encoder_weights_hash": "none"}
    ds = xr.Dataset({"embedding": (("imagette", "feature"), x, attrs)}, coords={"imagette": ids})
    with tempfile.TemporaryDirectory() as tmp:
        before = _rss_mb()
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            index = build_index(ds, Path(tmp) / "scaling.index")
        out["build_s"] = time.perf_counter() - start
        out["build_peak_mb"] = _rss_mb() - before
        out["warned"] = [str(w.message) for w in caught]
        out["index_mb"] = index.path.stat().st_size / 2**20
        say(f"index built {out['build_s']:.0f} s")
        index.search(q[:8], k)  # warm-up
        start = time.perf_counter()
        _, got = index.search(q, k)
        out["index_s"] = time.perf_counter() - start
        out["recall"] = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(got, truth, strict=True)]))
        out.update(factory=index.info["factory"], nlist=index.info["nlist"], effort=index.effort,
                   tuning={key: index.info["tuning"][key] for key in ("recall", "se", "required_sample_recall",
                                                                     "effort", "tried")})
    out["peak_mb"] = _rss_mb()
    return out


def scaling(sizes: list[int], dim: int, k: int, spread: float = 1.0, queries: int = 1024) -> None:
    print(f"\nthe default index as the archive grows: 2,000-cluster mixtures x {dim} stored as float16 (spread "
          f"{spread}), {queries} queries drawn like the data, none of them indexed; recall@{k} against exact search")
    print(f"{'N':>9} {'factory':>34} {'effort':>6} {'recall':>6} {'tuning rec':>10} {'build s':>8} {'index s':>8} "
          f"{'exact s':>8} {'speedup':>7} {'index MB':>8} {'build +MB':>9} {'peak MB':>8}", flush=True)
    rows = []
    for n in sizes:
        r = _child(["--scaling-one", str(n), "--dim", str(dim), "-k", str(k), "--spread", str(spread),
                    "--queries", str(queries)], progress=True)
        rows.append(r)
        print(f"{n:>9} {r['factory']:>34} {r['effort']:>6} {r['recall']:>6.3f} {r['tuning']['recall']:>10.3f} "
              f"{r['build_s']:>8.0f} {r['index_s']:>8.2f} {r['exact_s']:>8.2f} {r['exact_s'] / r['index_s']:>7.1f} "
              f"{r['index_mb']:>8.0f} {r['build_peak_mb']:>9.0f} {r['peak_mb']:>8.0f}", flush=True)
        print(f"{'':>9} tuning tried: {r['tuning']['tried']}", flush=True)
        for message in r["warned"]:
            print(f"{'':>9} warning: {message}", flush=True)
    if len(rows) >= 2:
        print(f"extrapolated to 12,000,000 ({queries} queries; a fit in log N over {len(rows)} sizes, not measured):")
        for key, what in (("build_s", "build s"), ("index_s", "index query s"), ("exact_s", "exact query s"),
                          ("index_mb", "index MB")):
            slope, at = np.polyfit(np.log10([r["n"] for r in rows]), np.log10([r[key] for r in rows]), 1)
            linear = rows[-1][key] * 12_000_000 / rows[-1]["n"]
            print(f"  {what}: {10 ** (at + slope * np.log10(12_000_000)):.4g} (fit: grows like N^{slope:.2f}); "
                  f"{linear:.4g} if linear in N from N = {rows[-1]['n']}")


def _child(args: list[str], progress: bool = False) -> dict:
    """Run one measurement in a fresh process (its peak memory is its own); ``progress``: pass its stderr on."""
    cmd = [sys.executable, __file__, *args]
    done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=None if progress else subprocess.PIPE,
                          text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run")
    parser.add_argument("--full", action="store_true", help="exact up to N = 1e6, index up to 2e5")
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--skip", nargs="*", default=[], choices=["exact", "index", "compact"])
    parser.add_argument("--exact-one", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--index-one", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--unclustered", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scaling", action="store_true", help="the default index as the archive grows, only")
    parser.add_argument("--sizes", nargs="*", type=int, default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--scaling-one", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--spread", type=float, default=1.0, help="scaling: noise std per feature around a centre")
    args = parser.parse_args()
    if args.scaling_one is not None:
        print(json.dumps(scaling_one(args.scaling_one, args.dim, args.k, args.spread, args.queries or 1024)))
        return
    if args.scaling:
        scaling(args.sizes, args.dim, args.k, args.spread, args.queries or 1024)
        return
    queries = args.queries or (256 if args.quick else 1024)
    if args.exact_one is not None:
        print(json.dumps(exact_one(args.exact_one, queries, args.dim, args.k)))
        return
    if args.index_one is not None:
        print(json.dumps(index_one(args.index_one, args.dim, args.k, not args.unclustered)))
        return
    try:
        import faiss

        version = faiss.__version__
    except ImportError:
        version = None
    print(f"faiss {version or 'not installed: ours only'}; numpy {np.__version__}")
    if "exact" not in args.skip:
        sizes = [2_000, 8_000] if args.quick else [10_000, 50_000, 100_000, 200_000]
        sizes += [500_000, 1_000_000] if args.full else []
        print(f"\nexact top-{args.k}: {queries} queries x N x {args.dim} float32 (best of 2, interleaved)")
        print(f"{'N':>9} {'ours s':>8} {'faiss s':>8} {'matmul s':>8} {'faiss/ours':>10} {'ours q/s':>9} "
              f"{'ours peak MB':>12} {'faiss +MB':>9} {'same':>5}")
        for n in sizes:
            r = _child(["--exact-one", str(n), "--queries", str(queries), "--dim", str(args.dim), "-k", str(args.k)])
            f = r["faiss_s"]
            print(f"{n:>9} {r['ours_s']:>8.2f} {f or float('nan'):>8.2f} {r['matmul_s']:>8.2f} "
                  f"{(f or np.nan) / r['ours_s']:>10.2f} {queries / r['ours_s']:>9.0f} {r['ours_peak_mb']:>12.0f} "
                  f"{r.get('faiss_extra_mb', float('nan')):>9.0f} {str(r.get('same', '-')):>5}")
    if "index" not in args.skip and version:
        sizes = [5_000] if args.quick else [10_000, 50_000]
        sizes += [200_000] if args.full else []
        print(f"\napproximate index (build_index from a store vs faiss on the array), recall@{args.k} vs exact")
        print(f"{'N':>8} {'data':>11} {'factory':>32} {'effort':>6} {'recall':>6} {'faiss rec':>9} {'build s':>8} "
              f"{'faiss s':>8} {'peak MB':>8} {'index MB':>8} {'q/s':>7} {'faiss q/s':>9} {'exact q/s':>9}")
        for n in sizes:
            for clustered in (True, False):
                r = _child(["--index-one", str(n), "--dim", str(args.dim), "-k", str(args.k)]
                           + ([] if clustered else ["--unclustered"]))
                print(f"{n:>8} {'clustered' if clustered else 'unclustered':>11} {r['factory']:>32} "
                      f"{r['effort']:>6} {r['ours_recall']:>6.3f} {r['faiss_recall']:>9.3f} {r['ours_build_s']:>8.1f} "
                      f"{r['faiss_build_s']:>8.1f} {r['ours_build_peak_mb']:>8.0f} {r['index_mb']:>8.0f} "
                      f"{r['ours_qps']:>7.0f} {r['faiss_qps']:>9.0f} {r['exact_qps']:>9.0f}")
    if "compact" not in args.skip:
        n = 3000 if args.quick else 20_000
        print(f"\ncompact embeddings ({n} clustered x {args.dim}): top-{args.k} agreement with float32, ridge RMSE")
        for r in compact(n, args.dim, args.k):
            print(f"{r['dtype']:>8} {r['bytes']} B/value  agreement {r['agreement']:.3f}  probe RMSE {r['rmse']:.4f}")


if __name__ == "__main__":
    main()
