"""Exact top-10 cosine search over N x 2048 float32 embeddings: time and peak memory against N, and the fraction of
this machine's matrix-multiply rate it reaches (a plain numpy matmul of the same shapes, timed in the same process).

Each N runs in a fresh process so that its peak resident memory (ru_maxrss) is its own. The database is lazy: N
rows cycle through a pool of distinct random blocks, so memory measures the search, not the synthetic data.

    python benchmarks/retrieval.py            # N = 1e4 .. 2e5, 1024 queries (a few minutes on 2 cores)
    python benchmarks/retrieval.py --quick    # tiny
    python benchmarks/retrieval.py --full     # N up to 1e6
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

POOL = 8  # distinct random database blocks


def _database(n: int, dim: int, block: int):
    import dask.array as da

    rng = np.random.default_rng(0)
    pool = [da.from_array(rng.standard_normal((block, dim), dtype=np.float32), chunks=(block, dim))
            for _ in range(min(POOL, -(-n // block)))]
    parts = [pool[i % len(pool)] for i in range(-(-n // block))]
    return da.concatenate(parts, axis=0)[:n], pool


def one(n: int, queries: int, dim: int, k: int, check: bool) -> dict:
    """Time the search of ``queries`` vectors against ``n``, and a plain matmul of the same block shapes."""
    from xwvnet.retrieval import DATABASE_BLOCK, QUERY_BLOCK, block_pairs, compute, search

    block = DATABASE_BLOCK
    database, pool = _database(n, dim, block)
    q = np.random.default_rng(1).standard_normal((queries, dim), dtype=np.float32)
    compute(*search(q[:8], q[:64], 3))  # warm-up: imports, thread pools
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    sim, idx = search(q, database, k)
    sim, idx = compute(sim, idx, tasks=block_pairs(queries, n))
    t_search = time.perf_counter() - start
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # the reference: the same products as plain numpy matmuls (database blocks from the pool), best of 2
    blocks = [np.asarray(pool[i % len(pool)].compute()) for i in range(len(pool))]
    sizes = [min(block, n - j) for j in range(0, n, block)]
    t_matmul = np.inf
    for _ in range(2):
        start = time.perf_counter()
        for qs in range(0, queries, QUERY_BLOCK):
            for i, size in enumerate(sizes):
                q[qs:qs + QUERY_BLOCK] @ blocks[i % len(blocks)][:size].T
        t_matmul = min(t_matmul, time.perf_counter() - start)
    ok = None
    if check:
        d = database.compute()
        u = d / np.linalg.norm(d, axis=1, keepdims=True)
        s = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ u.T
        ok = bool(np.allclose(np.sort(s, axis=1)[:, ::-1][:, :k], sim, atol=1e-5))
    return {"n": n, "queries": queries, "dim": dim, "search_s": t_search, "matmul_s": t_matmul,
            "peak_mb": rss_peak, "before_mb": rss_before, "pool_mb": len(pool) * block * dim * 4 / 2**20, "ok": ok}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run")
    parser.add_argument("--full", action="store_true", help="N up to 1e6 (about 8 GB of embeddings, lazily)")
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    queries = args.queries or (256 if args.quick else 1024)
    if args.one is not None:
        print(json.dumps(one(args.one, queries, args.dim, args.k, args.check)))
        return
    sizes = [2_000, 8_000] if args.quick else [10_000, 30_000, 100_000, 200_000]
    if args.full:
        sizes += [500_000, 1_000_000]
    print(f"exact top-{args.k} cosine search, {queries} queries x N database rows x {args.dim} float32 features")
    print(f"{'N':>9} {'DB GB':>7} {'Q x N GB':>9} {'search s':>9} {'matmul s':>9} {'GFLOP/s':>8} "
          f"{'of matmul':>9} {'peak RSS MB':>12} {'data MB':>8} {'exact':>6}")
    for n in sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--queries", str(queries), "--dim", str(args.dim),
               "-k", str(args.k)] + (["--check"] if n <= 30_000 else [])
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        flops = 2.0 * queries * n * args.dim
        exact = "-" if r["ok"] is None else ("yes" if r["ok"] else "NO")
        print(f"{n:>9} {n * args.dim * 4 / 1e9:>7.2f} {queries * n * 4 / 1e9:>9.2f} {r['search_s']:>9.2f} "
              f"{r['matmul_s']:>9.2f} {flops / r['search_s'] / 1e9:>8.1f} {r['matmul_s'] / r['search_s']:>9.0%} "
              f"{r['peak_mb']:>12.0f} {r['pool_mb']:>8.0f} {exact:>6}")
    print("DB GB: size of the embeddings; Q x N GB: what an unblocked similarity matrix would hold; 'of matmul': "
          "plain-matmul time / search time for the same products; data MB: the distinct random blocks the lazy "
          "database cycles through (held in memory), included in the peak RSS.")


if __name__ == "__main__":
    main()
