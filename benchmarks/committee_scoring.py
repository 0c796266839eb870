"""Measure two ways to score the pool with a committee on Ray, on the same rounds.

Option A is al_ray's path (``al_ray.scoring.distributed.score_pool_ray``): the
fitted committee goes to the object store once per round, a Ray Data actor pool
starts, and each scoring actor computes every member's probabilities for its
batches. Option B is a prototype that lives only in this file: the member
actors that trained the committee keep their fitted member and score the pool
themselves. Option B works as follows.

1. The driver takes the references of the pool's Ray Data blocks
   (``Dataset.to_arrow_refs``, which returns the blocks already in the object
   store without copying them), so no pool row passes through the driver.
2. Every block reference goes to all N member actors. Each actor drops the
   excluded rows and computes ``(row_ids, probabilities)``, the probabilities
   of shape ``(rows, classes)``.
3. One member per block, taken in turn, is the block's lead. The other N - 1
   members send their results to it, and the lead stacks all N to
   ``(N, rows, classes)``, computes the strategy's utility and returns only
   the block's top candidates, so the driver receives candidates only, as in
   option A. The reduction runs in a member actor, not in a Ray task, because
   a task needs an idle worker process. Ray Data's actor pool takes the idle
   workers and exits with them, so a task worker would start again every
   round, which took seconds on this machine.
4. The driver merges the candidates and calls the strategy's ``choose``, as
   ``score_pool`` does.

Both options score the same pool with the same members, strategy, ``n`` and
seed, and must select the same row ids. The script checks that on every size
and every repeat, then reports the best of ``--repeats`` for each option. The
option A time includes starting its actor pool, which the loop pays every
round. The option B time excludes starting and fitting the member actors,
because the loop has already paid for that when it trains the committee.
Option B's first call in a session imports Ray Data in every member actor,
which the loop would pay once per run, not per round. So one untimed call of
each option on the first pool comes before the timed ones, and its times are
printed.

Run:  python -m benchmarks.committee_scoring [--sizes 10000,100000] [--members 5]
Writes benchmarks/results/committee_scoring.csv and prints a table.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from al_ray.config import ScoringConfig, parse_config
from al_ray.data import load_shipped
from al_ray.data.pool import FEATURES, ROW_ID, Pool
from al_ray.errors import ScoringError
from al_ray.loop.outputs import write_csv_atomic
from al_ray.models import SklearnClassifier
from al_ray.models.committee import Committee
from al_ray.scoring import score_pool
from al_ray.scoring.inputs import CandidateSet, merge_candidates
from al_ray.seeding import derive_seed, spawn_seeds
from al_ray.strategies import (
    STRATEGIES,
    Need,
    QueryStrategy,
    ScoringBatch,
    SelectionContext,
    make_strategy,
    select_top_n,
)
from al_ray.training import build_trainer
from al_ray.training.committee_actors import _Member

__all__ = [
    "COLUMNS",
    "BenchmarkRun",
    "CommitteeMembers",
    "Measurement",
    "Settings",
    "block_candidates",
    "build_pool",
    "committee_strategies",
    "measure",
    "score_option_a",
    "score_option_b",
    "write_csv",
]

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_SIZES = "10000,100000"

COLUMNS = (
    "rows",
    "features",
    "members",
    "strategy",
    "n",
    "a_s",
    "b_s",
    "a_rows_per_s",
    "b_rows_per_s",
    "b_over_a",
    "a_model_bytes",
    "a_block_bytes",
    "b_block_bytes",
    "b_proba_bytes",
    "same_selection",
)


def committee_strategies() -> list[str]:
    """Return the strategies that option B supports: committee probabilities in, nothing kept per candidate."""
    return sorted(
        name
        for name, cls in STRATEGIES.items()
        if cls.needs == frozenset({Need.COMMITTEE_PROBABILITIES}) and not cls.candidate_needs
    )


@dataclass(frozen=True)
class Settings:
    """One benchmark run: the committee, the pools and the scoring settings of both options."""

    sizes: Sequence[int]
    members: int = 5
    labeled: int = 300
    strategy: str = "bald"
    n: int = 100
    repeats: int = 2
    batch_rows: int = 4096
    num_blocks: int = 8
    num_actors: int = 2
    actor_num_cpus: float = 0.5
    member_num_cpus: float = 0.2
    seed: int = 0
    warm_up: bool = True
    """Make one untimed call of each option on the first pool before timing."""


@dataclass(frozen=True)
class Measurement:
    """Both options on one pool size. Times are the best of the repeats, in seconds."""

    rows: int
    features: int
    members: int
    strategy: str
    n: int
    a_s: float
    b_s: float
    a_model_bytes: int
    """Bytes of option A's payload (strategy, committee, excluded ids), times the scoring actors that fetch it."""
    a_block_bytes: int
    """Pool bytes that option A's scoring actors read: every block once."""
    b_block_bytes: int
    """Pool bytes that option B's member actors read: every block once per member."""
    b_proba_bytes: int
    """Row ids and probabilities that option B's members send to each block's lead member."""
    a_selection: np.ndarray
    b_selection: np.ndarray

    @property
    def same_selection(self) -> bool:
        return bool(np.array_equal(self.a_selection, self.b_selection))

    def csv_row(self) -> list[object]:
        """Return the values in the order of :data:`COLUMNS`."""
        return [
            self.rows,
            self.features,
            self.members,
            self.strategy,
            self.n,
            self.a_s,
            self.b_s,
            self.rows / self.a_s,
            self.rows / self.b_s,
            self.b_s / self.a_s,
            self.a_model_bytes,
            self.a_block_bytes,
            self.b_block_bytes,
            self.b_proba_bytes,
            self.same_selection,
        ]


class _ScoringMember(_Member):
    """al_ray's member actor body plus what option B adds: it keeps its fitted member and scores blocks."""

    fitted: SklearnClassifier | None = None

    def fit(self, data: list, seed: int) -> SklearnClassifier:
        self.fitted = super().fit(data, seed)
        return self.fitted

    def predict_block(self, block, excluded: np.ndarray, batch_rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(row_ids, probabilities)`` of the block's rows not in ``excluded``.

        ``probabilities`` has shape ``(rows, classes)``. Every member drops the
        same rows, so the results of all members line up row by row.
        """
        from ray.data.block import BlockAccessor

        if self.fitted is None:
            # NOTE: a restarted actor comes back without its fitted member. A real
            # option B must refit or reload it; this prototype raises instead.
            raise ScoringError("this member actor is not fitted; call fit() before predict_block()")
        columns = BlockAccessor.for_block(block).to_batch_format("numpy")
        row_ids, features = columns[ROW_ID], columns[FEATURES]
        if excluded.size:
            keep = ~np.isin(row_ids, excluded)
            row_ids, features = row_ids[keep], features[keep]
        # Slices of batch_rows bound the float64 copy that predict_proba makes, as option A's batches do.
        parts = [
            self.fitted.predict_proba(features[start : start + batch_rows])
            for start in range(0, len(row_ids), batch_rows)
        ]
        probabilities = np.concatenate(parts) if parts else np.empty((0, len(self.classes)))
        return row_ids, probabilities

    def reduce_block(
        self,
        lead_index: int,
        block,
        excluded: np.ndarray,
        batch_rows: int,
        strategy: QueryStrategy,
        n: int,
        seed: int,
        *other_results: tuple[np.ndarray, np.ndarray],
    ) -> CandidateSet:
        """Score the block as its lead member and reduce all members' results to its top candidates.

        ``other_results`` are the other members' ``predict_block`` results in
        member order. This member's own result goes in at ``lead_index``, so
        the stack has the member order of ``Committee.committee_proba``.
        """
        results = list(other_results)
        results.insert(lead_index, self.predict_block(block, excluded, batch_rows))
        return block_candidates(strategy, n, seed, *results)


class CommitteeMembers:
    """The member actors of option B, built and fitted as the loop builds its committee.

    The estimators, seeds, bootstrap flag and CPUs per actor come from
    :func:`al_ray.training.build_trainer`, and each fit takes the seed that
    ``CommitteeTrainer.fit`` would give it, so the members are the loop's.
    """

    def __init__(
        self, members: int, strategy: str, seed: int, member_num_cpus: float, classes: Sequence[str]
    ) -> None:
        import ray

        config = parse_config(
            {
                "name": "committee_scoring",
                "seed": seed,
                "data": {"dataset": "mnist_test"},
                # The estimator settings of configs/mnist.yaml.
                "model": {
                    "estimator": "logistic_regression",
                    "params": {"C": 1.0, "max_iter": 300},
                    "committee": {"size": members, "actor_num_cpus": member_num_cpus},
                },
                "strategy": {"name": strategy},
            },
            source="benchmark settings",
        )
        trainer = build_trainer(config, classes, needs_committee=True)
        self.root_seed = trainer.root_seed
        member_class = ray.remote(_ScoringMember).options(
            num_cpus=trainer.actor_num_cpus, max_restarts=2, max_task_retries=2
        )
        self.actors = [
            member_class.remote(estimator, trainer.classes, trainer.bootstrap) for estimator in trainer.estimators
        ]

    def fit(self, features: np.ndarray, labels: np.ndarray, round_index: int) -> Committee:
        """Fit every member actor and return the same members as one :class:`Committee` for option A."""
        import ray

        data = ray.put((np.asarray(features), np.asarray(labels, dtype=np.int64)))
        seeds = spawn_seeds(self.root_seed, "committee", len(self.actors), round_index)
        members = ray.get([actor.fit.remote([data], seed) for actor, seed in zip(self.actors, seeds)])
        return Committee(members)

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors = []


def block_candidates(
    strategy: QueryStrategy, n: int, seed: int, *member_results: tuple[np.ndarray, np.ndarray]
) -> CandidateSet:
    """Reduce one block's member results, in member order, to its top candidates."""
    row_ids = member_results[0][0]
    for index, (member_row_ids, _) in enumerate(member_results[1:], start=1):
        if not np.array_equal(member_row_ids, row_ids):
            raise ScoringError(
                f"member {index} returned other rows than member 0 for the same block; "
                "every member must drop the same excluded rows"
            )
    # (n_members, n_rows, n_classes), the layout committee strategies read.
    committee_probabilities = np.stack([probabilities for _, probabilities in member_results])
    batch = ScoringBatch(row_ids=row_ids, committee_probabilities=committee_probabilities)
    utilities = strategy.utility(batch, seed) if len(batch) else np.empty(0, dtype=np.float64)
    shortlist = select_top_n(row_ids, utilities, strategy.candidate_count(n), seed)
    return CandidateSet(ScoringBatch(row_ids=shortlist.row_ids), shortlist.utilities)


def score_option_b(
    pool: Pool,
    strategy: QueryStrategy,
    members: CommitteeMembers,
    excluded: np.ndarray,
    n: int,
    seed: int,
    batch_rows: int,
) -> np.ndarray:
    """Score the pool on the member actors and return the selected row ids, best first."""
    import ray

    excluded = np.unique(np.asarray(excluded, dtype=np.int64))
    excluded_ref = ray.put(excluded)
    strategy_ref = ray.put(strategy)
    actors = members.actors
    part_refs = []
    # Every actor receives its calls in block order, and a call for block k waits
    # only on calls for block k, so the leads cannot wait on each other in a cycle.
    for index, block_ref in enumerate(pool.dataset().to_arrow_refs()):
        lead = index % len(actors)
        other_refs = [
            actor.predict_block.remote(block_ref, excluded_ref, batch_rows)
            for member, actor in enumerate(actors)
            if member != lead
        ]
        part_refs.append(
            actors[lead].reduce_block.remote(
                lead, block_ref, excluded_ref, batch_rows, strategy_ref, n, seed, *other_refs
            )
        )
    candidates = merge_candidates(ray.get(part_refs), strategy.candidate_count(n), seed, strategy)
    selection = strategy.choose(candidates.batch, candidates.utilities, n, seed, SelectionContext())
    return selection.row_ids


def score_option_a(
    pool: Pool,
    strategy: QueryStrategy,
    committee: Committee,
    excluded: np.ndarray,
    n: int,
    seed: int,
    config: ScoringConfig,
) -> np.ndarray:
    """Score the pool on al_ray's Ray Data path and return the selected row ids, best first."""
    return score_pool(pool, strategy, committee, excluded, n, seed, config).selection.row_ids


def build_pool(features: np.ndarray, rows: int, num_blocks: int) -> Pool:
    """Return a pool of ``rows`` rows that repeats ``features`` in order, with row ids ``0 .. rows - 1``."""
    sources = np.arange(rows) % len(features)
    return Pool(np.arange(rows, dtype=np.int64), features[sources], num_blocks=num_blocks)


def _payload_bytes(strategy: QueryStrategy, committee: Committee, excluded: np.ndarray, n: int, seed: int) -> int:
    # The tuple that score_pool_ray puts in the object store. Ray serializes it with
    # pickle protocol 5 plus its own header, so this length is an estimate of the stored size.
    return len(pickle.dumps((strategy, committee, excluded, n, seed), protocol=5))


@dataclass(frozen=True)
class BenchmarkRun:
    """All measurements of one session, and the untimed first call of each option, in seconds."""

    measurements: list[Measurement]
    first_call_a_s: float | None
    first_call_b_s: float | None
    """None when ``Settings.warm_up`` is off."""


def measure(settings: Settings) -> BenchmarkRun:
    """Train the committee, then time both options on every pool size. Ray must be running."""
    data = load_shipped("mnist_test")
    rng = np.random.default_rng(derive_seed(settings.seed, "benchmark-labeled"))
    labeled = np.sort(rng.choice(len(data.row_ids), size=settings.labeled, replace=False))
    strategy = make_strategy(settings.strategy)
    members = CommitteeMembers(
        settings.members, settings.strategy, settings.seed, settings.member_num_cpus, data.classes
    )
    config = ScoringConfig(
        mode="ray",
        batch_rows=settings.batch_rows,
        num_actors=settings.num_actors,
        actor_num_cpus=settings.actor_num_cpus,
    )
    seed = derive_seed(settings.seed, "select", 1)
    results = []
    first_call: dict[str, float] = {}
    try:
        committee = members.fit(data.features[labeled], data.labels[labeled], round_index=1)

        def score_a(pool: Pool, excluded: np.ndarray) -> np.ndarray:
            return score_option_a(pool, strategy, committee, excluded, settings.n, seed, config)

        def score_b(pool: Pool, excluded: np.ndarray) -> np.ndarray:
            return score_option_b(pool, strategy, members, excluded, settings.n, seed, settings.batch_rows)

        for rows in settings.sizes:
            pool = build_pool(data.features, rows, settings.num_blocks)
            pool.dataset()  # blocks into the object store once, as the loop does before round 1
            # The labeled rows are the first copies of the labeled MNIST rows, so row_id == position.
            excluded = labeled[labeled < rows]
            timings: dict[str, list[float]] = {"a": [], "b": []}
            selections: dict[str, np.ndarray] = {}
            if settings.warm_up and not first_call:
                for option, score in (("a", score_a), ("b", score_b)):
                    started = time.perf_counter()
                    score(pool, excluded)
                    first_call[option] = time.perf_counter() - started
            for repeat in range(settings.repeats):
                # Alternate the order so that a slow moment on a shared machine does not always hit one option.
                for option in ("a", "b") if repeat % 2 == 0 else ("b", "a"):
                    score = score_a if option == "a" else score_b
                    started = time.perf_counter()
                    chosen = score(pool, excluded)
                    timings[option].append(time.perf_counter() - started)
                    if option in selections and not np.array_equal(selections[option], chosen):
                        raise ScoringError(
                            f"option {option.upper()} selected other rows on repeat {repeat} at {rows} rows"
                        )
                    selections[option] = chosen
            pool_bytes = pool.row_ids.nbytes + pool.features.nbytes
            rows_scored = rows - len(excluded)
            results.append(
                Measurement(
                    rows=rows,
                    features=pool.n_features,
                    members=settings.members,
                    strategy=settings.strategy,
                    n=settings.n,
                    a_s=min(timings["a"]),
                    b_s=min(timings["b"]),
                    a_model_bytes=settings.num_actors
                    * _payload_bytes(strategy, committee, excluded, settings.n, seed),
                    a_block_bytes=pool_bytes,
                    b_block_bytes=settings.members * pool_bytes,
                    b_proba_bytes=(settings.members - 1) * rows_scored * (8 + 8 * len(data.classes)),
                    a_selection=selections["a"],
                    b_selection=selections["b"],
                )
            )
            del pool
    finally:
        members.close()
    return BenchmarkRun(results, first_call.get("a"), first_call.get("b"))


def write_csv(measurements: Sequence[Measurement], path: Path) -> None:
    """Write one row per measurement, atomically: a reader finds the old file or the whole new one."""
    write_csv_atomic(path, COLUMNS, [measurement.csv_row() for measurement in measurements])


def _megabytes(count: int) -> str:
    return f"{count / 1e6:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated pool sizes in rows")
    parser.add_argument("--members", type=int, default=5, help="committee members (bagged logistic regressions)")
    parser.add_argument("--labeled", type=int, default=300, help="labeled MNIST rows the members train on")
    parser.add_argument("--strategy", default="bald", choices=committee_strategies())
    parser.add_argument("--n", type=int, default=100, help="rows selected per round")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per option and size; the best counts")
    parser.add_argument("--batch-rows", type=int, default=4096, help="rows per predict_proba call in both options")
    parser.add_argument("--num-blocks", type=int, default=8, help="Ray Data blocks per pool")
    parser.add_argument("--num-cpus", type=int, default=2, help="logical CPUs of the local Ray")
    parser.add_argument("--output", type=Path, default=RESULTS / "committee_scoring.csv", help="CSV file to write")
    args = parser.parse_args()
    try:
        sizes = [int(size) for size in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes must be comma-separated whole numbers such as 10000,100000, got {args.sizes!r}")
    if min(sizes) < 1:
        parser.error(f"every pool size in --sizes must be at least 1 row, got {args.sizes!r}")
    if args.members < 2:
        parser.error(f"--members must be at least 2 for a committee, got {args.members}")
    if args.labeled < 2 or args.labeled > 10_000:
        parser.error(f"--labeled must be between 2 and 10000 (the MNIST test split), got {args.labeled}")
    if args.n < 1 or args.repeats < 1:
        parser.error(f"--n and --repeats must be at least 1, got {args.n} and {args.repeats}")
    settings = Settings(
        sizes=sizes,
        members=args.members,
        labeled=args.labeled,
        strategy=args.strategy,
        n=args.n,
        repeats=args.repeats,
        batch_rows=args.batch_rows,
        num_blocks=args.num_blocks,
    )

    import ray
    from ray.data import DataContext

    ray.init(
        address="local",
        num_cpus=args.num_cpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    try:
        DataContext.get_current().enable_progress_bars = False
        DataContext.get_current().print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        run = measure(settings)
    finally:
        ray.shutdown()

    measurements = run.measurements
    write_csv(measurements, args.output)
    if run.first_call_a_s is not None and run.first_call_b_s is not None:
        print(
            f"untimed first call on {settings.sizes[0]} rows: "
            f"A {run.first_call_a_s:.3f} s, B {run.first_call_b_s:.3f} s"
        )
    print(
        f"{'rows':>9} {'A s':>7} {'B s':>7} {'A rows/s':>10} {'B rows/s':>10} {'B/A':>5} "
        f"{'A model MB':>10} {'A block MB':>10} {'B block MB':>10} {'B proba MB':>10} same"
    )
    for m in measurements:
        print(
            f"{m.rows:>9} {m.a_s:>7.3f} {m.b_s:>7.3f} {m.rows / m.a_s:>10,.0f} {m.rows / m.b_s:>10,.0f} "
            f"{m.b_s / m.a_s:>5.2f} {_megabytes(m.a_model_bytes):>10} {_megabytes(m.a_block_bytes):>10} "
            f"{_megabytes(m.b_block_bytes):>10} {_megabytes(m.b_proba_bytes):>10} {m.same_selection}"
        )
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, python {platform.python_version()}")
    print(f"wrote {args.output}")
    if not all(m.same_selection for m in measurements):
        raise SystemExit("options A and B selected different rows: the prototype is not equivalent")


if __name__ == "__main__":
    main()
