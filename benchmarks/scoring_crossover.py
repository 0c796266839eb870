"""Measure in-process against Ray Data pool scoring and find the crossover pool size.

Both paths score the same pool with the same model and strategy and must return
the same selection. The script checks that on every size, then times each
path (best of ``--repeats``) in one Ray session. The Ray time includes the
per-round actor-pool start-up, because the loop pays it every round.

Run:  python -m benchmarks.scoring_crossover [--features 64] [--sizes 2000,...]
Writes scoring_crossover_<features>.csv to --out-dir (default benchmarks/results) and prints a table.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_SIZES = "2000,10000,50000,100000,200000,400000,1000000"


def _model(n_features: int, n_classes: int, seed: int):
    from sklearn.linear_model import LogisticRegression

    from al_ray.models import SklearnClassifier

    rng = np.random.default_rng(seed)
    features = rng.normal(size=(2000, n_features)).astype(np.float32)
    labels = rng.integers(0, n_classes, size=2000)
    return SklearnClassifier(LogisticRegression(max_iter=200), [str(c) for c in range(n_classes)]).fit(
        features, labels
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated pool sizes")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--n", type=int, default=100, help="rows selected per round")
    parser.add_argument("--batch-rows", type=int, default=4096)
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="folder for the CSV file")
    args = parser.parse_args(argv)

    import ray

    from al_ray.config import ScoringConfig
    from al_ray.data.pool import Pool
    from al_ray.scoring import score_pool
    from al_ray.strategies import make_strategy

    ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)

    model = _model(args.features, args.classes, 0)
    strategy = make_strategy("margin")
    rng = np.random.default_rng(1)
    local_config = ScoringConfig(mode="local", batch_rows=args.batch_rows)
    ray_config = ScoringConfig(mode="ray", batch_rows=args.batch_rows, num_actors=2, actor_num_cpus=0.5)
    rows = []
    print(f"{'rows':>9} {'local_s':>8} {'ray_s':>8} {'local rows/s':>13} {'ray rows/s':>11} {'ray/local':>9}")
    for size in [int(s) for s in args.sizes.split(",")]:
        pool = Pool(np.arange(size, dtype=np.int64), rng.random((size, args.features), dtype=np.float32))
        pool.dataset()  # blocks into the object store once, as the loop does before round 1
        excluded = np.empty(0, dtype=np.int64)
        timings = {"local": [], "ray": []}
        selections = {}
        for _ in range(args.repeats):
            for name, config in (("local", local_config), ("ray", ray_config)):
                started = time.perf_counter()
                result = score_pool(pool, strategy, model, excluded, args.n, 7, config)
                timings[name].append(time.perf_counter() - started)
                selections[name] = result.selection.row_ids
        if not np.array_equal(selections["local"], selections["ray"]):
            raise SystemExit(f"selections differ at {size} rows: the paths are not equivalent")
        local_s, ray_s = min(timings["local"]), min(timings["ray"])
        rows.append((size, args.features, local_s, ray_s, size / local_s, size / ray_s, ray_s / local_s))
        print(f"{size:>9} {local_s:>8.3f} {ray_s:>8.3f} {size / local_s:>13,.0f} {size / ray_s:>11,.0f} {ray_s / local_s:>9.2f}")
        del pool
    ray.shutdown()

    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"scoring_crossover_{args.features}.csv"
    with open(out, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["rows", "features", "local_s", "ray_s", "local_rows_per_s", "ray_rows_per_s", "ray_over_local"])
        writer.writerows(rows)
    faster = [row[0] for row in rows if row[3] < row[2]]
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, python {platform.python_version()}")
    print(f"crossover: {'Ray Data faster from ' + str(faster[0]) + ' rows' if faster else 'in-process faster at every measured size'}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
