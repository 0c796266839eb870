"""Label efficiency of al_ray's uncertainty strategies against random and two peers.

For each dataset and seed, al_ray's seeded split (``al_ray.data.make_split``)
gives one initial labeled set, one pool and one test set. Every library then
runs every strategy on that same split, with the same estimator
(``al_ray.models.build_estimator``), the same batch size and the same number of
rounds. A round fits a fresh model on the labeled rows, measures its accuracy
on the test set, and queries the next batch from the rest of the pool with
the library's own query code:

- al_ray: ``make_strategy(name).query`` on a ``ScoringBatch`` of the unlabeled
  pool rows, scored by ``al_ray.models.SklearnClassifier`` in this process.
  This is the strategy code that the loop runs, without Ray, the label store
  or MLflow around it.
- modAL: ``ActiveLearner.query(X_pool, n_instances=batch)`` with
  ``modAL.uncertainty.margin_sampling``, ``entropy_sampling`` or
  ``uncertainty_sampling``. modAL has no random strategy. Its ``teach``
  fails with scikit-learn >= 1.8, so each round builds a new
  ``ActiveLearner`` on the labeled rows instead (see :func:`run_modal`).
- scikit-activeml: ``UncertaintySampling(method=...)`` or ``RandomSampling``,
  ``query(X, y, clf=..., fit_clf=False, batch_size=batch)`` over the initial
  and pool rows, with the pool's labels set to ``MISSING_LABEL``.

Metrics, per dataset, library, strategy and seed:

- the accuracy after each round, against the number of labels;
- AULC, the area under that curve by the trapezoid rule divided by the label
  range, so it is the mean accuracy over the labeling budget;
- the labels needed to reach 95% of the full-pool accuracy (the same
  estimator fitted once on the initial set and the whole pool);
- the labels needed to reach the final accuracy of al_ray's random sampling
  on the same split, as a fraction of random's final label count.

"Labels needed" is the first measured point of the curve at or above the
target, so it is an upper bound that moves in steps of one batch.

Run:  python -m benchmarks.label_efficiency [--datasets mnist_test,letter_recognition] [--seeds 10]
Writes benchmarks/results/label_efficiency.csv (one row per run),
label_efficiency_summary.csv, label_efficiency.png and label_efficiency.md.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib.metadata
import logging
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import ConvergenceWarning

from al_ray.data import load_shipped, make_split
from al_ray.models import SklearnClassifier, build_estimator
from al_ray.seeding import derive_seed
from al_ray.strategies import ScoringBatch, make_strategy

__all__ = [
    "CSV_COLUMNS",
    "DATASETS",
    "LIBRARIES",
    "STRATEGIES",
    "SUMMARY_COLUMNS",
    "Curve",
    "DatasetSetup",
    "Task",
    "area_under_curve",
    "build_task",
    "labels_to_reach",
    "main",
    "run_case",
    "summarize",
]

logger = logging.getLogger(__name__)

RESULTS = Path(__file__).resolve().parent / "results"

STRATEGIES: tuple[str, ...] = ("margin", "entropy", "least_confidence", "random")
LIBRARIES: tuple[str, ...] = ("al_ray", "modal", "skactiveml")

LIBRARY_TITLES = {"al_ray": "al_ray", "modal": "modAL", "skactiveml": "scikit-activeml"}

# The module each peer needs; a peer whose module does not import is skipped.
PEER_MODULES = {"modal": "modAL", "skactiveml": "skactiveml"}

# Each library's name for al_ray's strategy, or None where the library has no equivalent.
MODAL_QUERIES: dict[str, str | None] = {
    "margin": "margin_sampling",
    "entropy": "entropy_sampling",
    "least_confidence": "uncertainty_sampling",
    "random": None,
}
SKACTIVEML_METHODS: dict[str, str | None] = {
    "margin": "margin_sampling",
    "entropy": "entropy",
    "least_confidence": "least_confident",
    "random": None,  # RandomSampling, a class of its own
}

FULL_POOL_FRACTION = 0.95
"""The label target is this fraction of the full-pool accuracy."""


@dataclass(frozen=True)
class DatasetSetup:
    """The split, budget and model of one dataset; every library gets the same."""

    name: str
    initial_labeled: int
    rounds: int
    batch: int
    pool_size: int | None
    test_size: int
    estimator_params: dict[str, Any]
    standardize: bool


DATASETS: dict[str, DatasetSetup] = {
    # On the 2-core benchmark machine, C=0.05 and tol=1e-3 keep a 784-feature fit near 0.3 s at 500
    # labels (C=1 took 2.8 s) and reach about the same full-pool accuracy.
    "mnist_test": DatasetSetup(
        name="mnist_test",
        initial_labeled=20,
        rounds=10,
        batch=50,
        pool_size=5000,
        test_size=2000,
        estimator_params={"C": 0.05, "tol": 1e-3, "max_iter": 100},
        standardize=False,
    ),
    "letter_recognition": DatasetSetup(
        name="letter_recognition",
        initial_labeled=52,
        rounds=10,
        batch=100,
        pool_size=10000,
        test_size=4000,
        estimator_params={"C": 1.0, "max_iter": 500},
        standardize=True,
    ),
}
"""Default setup per shipped dataset; command-line options override the sizes."""


@dataclass(frozen=True)
class Task:
    """One dataset split for one seed, in the arrays that every library receives.

    Labels are class indices into ``classes``; features are float64, so every
    library fits the estimator on identical input.
    """

    dataset: str
    seed: int
    classes: tuple[str, ...]
    initial_features: np.ndarray
    """Shape ``(n_initial, n_features)``."""
    initial_labels: np.ndarray
    """Shape ``(n_initial,)``."""
    pool_row_ids: np.ndarray
    """``row_id`` of each pool row, shape ``(n_pool,)``, sorted ascending."""
    pool_features: np.ndarray
    """Shape ``(n_pool, n_features)``."""
    pool_labels: np.ndarray
    """True labels of the pool rows, revealed when a row is queried, shape ``(n_pool,)``."""
    test_features: np.ndarray
    test_labels: np.ndarray
    estimator: BaseEstimator
    """Unfitted template; every fit uses a clone."""
    rounds: int
    batch: int

    @property
    def query_seed(self) -> int:
        """Seed of the queries, derived from the run's seed."""
        return derive_seed(self.seed, "query")


@dataclass(frozen=True)
class Curve:
    """A learning curve: test accuracy after each round against labels used."""

    labels: np.ndarray
    """Labeled rows the model was fitted on, shape ``(rounds + 1,)``, increasing."""
    accuracies: np.ndarray
    """Test accuracy in [0, 1] at each point, shape ``(rounds + 1,)``."""


def area_under_curve(labels: np.ndarray, accuracies: np.ndarray) -> float:
    """Return the trapezoid area under ``accuracies`` over ``labels``, divided by the label range.

    The result is the mean accuracy over the labeling budget, in [0, 1]. A
    curve of one point has no range, so its area is that point's accuracy.
    """
    given_labels = np.asarray(labels)
    labels = given_labels.astype(np.float64)
    accuracies = np.asarray(accuracies, dtype=np.float64)
    if labels.shape != accuracies.shape or labels.ndim != 1 or labels.size == 0:
        raise ValueError(
            f"labels and accuracies must be non-empty 1-D arrays of one shape, got "
            f"{labels.shape} and {accuracies.shape}"
        )
    if labels.size == 1:
        return float(accuracies[0])
    if np.any(np.diff(labels) <= 0):
        raise ValueError(f"labels must increase strictly, got {given_labels.tolist()}")
    widths = np.diff(labels)
    heights = (accuracies[1:] + accuracies[:-1]) / 2.0
    return float(np.sum(widths * heights) / (labels[-1] - labels[0]))


def labels_to_reach(labels: np.ndarray, accuracies: np.ndarray, target: float) -> int | None:
    """Return the labels at the first point with accuracy >= ``target``, or None if none reaches it."""
    reached = np.flatnonzero(np.asarray(accuracies) >= target)
    if reached.size == 0:
        return None
    return int(np.asarray(labels)[reached[0]])


def build_task(setup: DatasetSetup, seed: int) -> Task:
    """Split ``setup``'s dataset with a seed derived from ``seed`` and gather the arrays."""
    data = load_shipped(setup.name)
    split = make_split(
        data,
        initial_labeled=setup.initial_labeled,
        test_size=setup.test_size,
        seed=derive_seed(seed, "split"),
        pool_size=setup.pool_size,
    )
    # Shipped datasets use row_id == position, but the lookup must not rely on it.
    order = np.argsort(data.row_ids)

    def rows(row_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        positions = order[np.searchsorted(data.row_ids, row_ids, sorter=order)]
        return data.features[positions].astype(np.float64), data.labels[positions].copy()

    initial_features, initial_labels = rows(split.initial_labeled)
    pool_features, pool_labels = rows(split.pool)
    test_features, test_labels = rows(split.test)
    estimator = build_estimator(
        "logistic_regression",
        setup.estimator_params,
        standardize=setup.standardize,
        seed=derive_seed(seed, "model"),
    )
    return Task(
        dataset=setup.name,
        seed=seed,
        classes=data.classes,
        initial_features=initial_features,
        initial_labels=initial_labels,
        pool_row_ids=np.asarray(split.pool),
        pool_features=pool_features,
        pool_labels=pool_labels,
        test_features=test_features,
        test_labels=test_labels,
        estimator=estimator,
        rounds=setup.rounds,
        batch=setup.batch,
    )


def _accuracy(predicted: np.ndarray, expected: np.ndarray) -> float:
    return float(np.mean(np.asarray(predicted) == expected))


def full_pool_accuracy(task: Task) -> float:
    """Fit the estimator on the initial set and the whole pool; return its test accuracy."""
    model = clone(task.estimator)
    model.fit(
        np.vstack([task.initial_features, task.pool_features]),
        np.concatenate([task.initial_labels, task.pool_labels]),
    )
    return _accuracy(model.predict(task.test_features), task.test_labels)


def run_al_ray(task: Task, strategy_name: str) -> Curve:
    """Run al_ray's strategy ``strategy_name`` for ``task.rounds`` rounds of ``task.batch`` queries."""
    strategy = make_strategy(strategy_name)
    model = SklearnClassifier(task.estimator, task.classes)
    labeled = np.zeros(task.pool_row_ids.size, dtype=bool)
    counts: list[int] = []
    accuracies: list[float] = []
    for round_index in range(task.rounds + 1):
        model.fit(
            np.vstack([task.initial_features, task.pool_features[labeled]]),
            np.concatenate([task.initial_labels, task.pool_labels[labeled]]),
        )
        counts.append(task.initial_labels.size + int(labeled.sum()))
        accuracies.append(_accuracy(model.predict(task.test_features), task.test_labels))
        if round_index == task.rounds:
            break

        unlabeled = np.flatnonzero(~labeled)
        probabilities = model.predict_proba(task.pool_features[unlabeled]) if strategy.needs_model else None
        batch = ScoringBatch(row_ids=task.pool_row_ids[unlabeled], probabilities=probabilities)
        selection = strategy.query(batch, task.batch, derive_seed(task.query_seed, "al_ray", round_index))
        labeled[np.searchsorted(task.pool_row_ids, selection.row_ids)] = True
    return Curve(np.array(counts), np.array(accuracies))


def run_modal(task: Task, strategy_name: str) -> Curve:
    """Run modAL's ``ActiveLearner`` with its query function equivalent to ``strategy_name``."""
    import modAL.uncertainty
    from modAL.models import ActiveLearner

    query_name = MODAL_QUERIES[strategy_name]
    if query_name is None:
        raise ValueError(f"modAL has no strategy equivalent to {strategy_name!r}")
    query_strategy = getattr(modAL.uncertainty, query_name)
    labeled = np.zeros(task.pool_row_ids.size, dtype=bool)
    counts: list[int] = []
    accuracies: list[float] = []
    for round_index in range(task.rounds + 1):
        # NOTE: modAL 0.4.2.1's teach() calls check_X_y(force_all_finite=...),
        # which scikit-learn 1.8 removed. A new learner per round fits on the
        # labeled rows in its constructor, which is what teach() does after
        # appending them, and the query is still modAL's own code.
        learner = ActiveLearner(
            estimator=clone(task.estimator),
            query_strategy=query_strategy,
            X_training=np.vstack([task.initial_features, task.pool_features[labeled]]),
            y_training=np.concatenate([task.initial_labels, task.pool_labels[labeled]]),
        )
        counts.append(int(learner.y_training.size))
        accuracies.append(_accuracy(learner.predict(task.test_features), task.test_labels))
        if round_index == task.rounds:
            break
        unlabeled = np.flatnonzero(~labeled)
        # modAL returns positions into the array it was given.
        positions, _ = learner.query(task.pool_features[unlabeled], n_instances=task.batch)
        labeled[unlabeled[positions]] = True
    return Curve(np.array(counts), np.array(accuracies))


def run_skactiveml(task: Task, strategy_name: str) -> Curve:
    """Run scikit-activeml's pool strategy equivalent to ``strategy_name``."""
    from skactiveml.classifier import SklearnClassifier as SkactivemlClassifier
    from skactiveml.pool import RandomSampling, UncertaintySampling
    from skactiveml.utils import MISSING_LABEL

    # scikit-learn and scikit-activeml take int seeds below 2**32 only.
    random_state = task.query_seed % 2**32
    features = np.vstack([task.initial_features, task.pool_features])
    true_labels = np.concatenate([task.initial_labels, task.pool_labels]).astype(np.float64)
    labels = np.full(true_labels.shape, MISSING_LABEL, dtype=np.float64)
    labels[: task.initial_labels.size] = true_labels[: task.initial_labels.size]

    classifier = SkactivemlClassifier(
        clone(task.estimator), classes=np.arange(len(task.classes)), random_state=random_state
    )
    method = SKACTIVEML_METHODS[strategy_name]
    if strategy_name == "random":
        sampler: Any = RandomSampling(random_state=random_state)
    else:
        sampler = UncertaintySampling(method=method, random_state=random_state)

    counts: list[int] = []
    accuracies: list[float] = []
    for round_index in range(task.rounds + 1):
        classifier.fit(features, labels)
        counts.append(int(np.count_nonzero(~np.isnan(labels))))
        accuracies.append(_accuracy(classifier.predict(task.test_features), task.test_labels))
        if round_index == task.rounds:
            break
        if strategy_name == "random":
            chosen = sampler.query(features, labels, batch_size=task.batch)
        else:
            chosen = sampler.query(features, labels, clf=classifier, fit_clf=False, batch_size=task.batch)
        labels[chosen] = true_labels[chosen]
    return Curve(np.array(counts), np.array(accuracies))


RUNNERS: dict[str, Callable[[Task, str], Curve]] = {
    "al_ray": run_al_ray,
    "modal": run_modal,
    "skactiveml": run_skactiveml,
}


def missing_status(library: str, strategy_name: str) -> str | None:
    """Return why ``library`` cannot run ``strategy_name`` here, or None when it can."""
    module = PEER_MODULES.get(library)
    if module is not None:
        try:
            __import__(module)
        except ImportError:
            return f"skipped: {module} is not installed"
    if library == "modal" and MODAL_QUERIES[strategy_name] is None:
        return "not in modAL"
    return None


@contextmanager
def _quiet_fits() -> Iterator[None]:
    # Every library fits with the same max_iter, so an early stop is part of the
    # shared model. The warnings would only repeat that thousands of times.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def run_case(task: Task, library: str, strategy_name: str) -> tuple[str, Curve | None, float]:
    """Run one library and strategy on ``task``; return status, curve and seconds.

    A peer that fails is recorded as ``"failed: <error>"`` and logged, so one
    broken peer does not end the benchmark. al_ray's own errors propagate.
    """
    missing = missing_status(library, strategy_name)
    if missing is not None:
        return missing, None, 0.0
    started = time.perf_counter()
    try:
        with _quiet_fits():
            curve = RUNNERS[library](task, strategy_name)
    except Exception as exc:
        if library == "al_ray":
            raise
        logger.warning(
            "%s %s failed on %s seed %d: %r", library, strategy_name, task.dataset, task.seed, exc
        )
        return f"failed: {type(exc).__name__}: {exc}", None, time.perf_counter() - started
    return "ok", curve, time.perf_counter() - started


CSV_COLUMNS: tuple[str, ...] = (
    "dataset", "library", "strategy", "seed", "status", "seconds",
    "labels", "accuracies", "final_labels", "final_accuracy", "aulc",
    "full_pool_accuracy", "target_accuracy", "labels_to_target",
    "random_final_accuracy", "labels_to_random_final", "fraction_of_random_labels",
)  # fmt: skip
"""Columns of the per-run CSV. ``labels`` and ``accuracies`` are ``;``-separated curves.

Empty cells mean "no value": the run did not happen (see ``status``) or never
reached the target.
"""

SUMMARY_COLUMNS: tuple[str, ...] = (
    "dataset", "library", "strategy", "status", "seeds", "final_labels",
    "final_accuracy_mean", "final_accuracy_std", "aulc_mean", "aulc_std",
    "full_pool_accuracy_mean", "target_accuracy_mean", "seeds_reaching_target",
    "labels_to_target_mean", "labels_to_target_std",
    "random_final_accuracy_mean", "labels_to_random_final", "fraction_of_random_labels",
    "seconds_mean", "labels", "accuracy_mean", "accuracy_std",
)  # fmt: skip
"""Columns of the summary CSV, one row per dataset, library and strategy.

``labels_to_random_final`` and ``fraction_of_random_labels`` come from the
mean curve over seeds against the mean of random's final accuracies.
"""


def _join(values: np.ndarray) -> str:
    return ";".join(f"{value:.6g}" for value in values)


def _cell(value: float | int | None, digits: int = 6) -> str | float | int:
    if value is None:
        return ""
    return round(value, digits) if isinstance(value, float) else value


def run_seed(
    setup: DatasetSetup, seed: int, libraries: Sequence[str], strategies: Sequence[str]
) -> list[dict[str, object]]:
    """Run every library and strategy on one seed's split; return one CSV row per run."""
    task = build_task(setup, seed)
    with _quiet_fits():
        full_accuracy = full_pool_accuracy(task)
    target = FULL_POOL_FRACTION * full_accuracy

    results = {
        (library, strategy): run_case(task, library, strategy)
        for strategy in strategies
        for library in libraries
    }
    reference = results.get(("al_ray", "random"))
    random_curve = reference[1] if reference is not None else None

    rows = []
    for (library, strategy), (status, curve, seconds) in results.items():
        row: dict[str, object] = {column: "" for column in CSV_COLUMNS}
        row.update(dataset=setup.name, library=library, strategy=strategy, seed=seed, status=status)
        row.update(full_pool_accuracy=round(full_accuracy, 6), target_accuracy=round(target, 6))
        if curve is not None:
            row.update(
                seconds=round(seconds, 3),
                labels=_join(curve.labels),
                accuracies=_join(curve.accuracies),
                final_labels=int(curve.labels[-1]),
                final_accuracy=round(float(curve.accuracies[-1]), 6),
                aulc=round(area_under_curve(curve.labels, curve.accuracies), 6),
                labels_to_target=_cell(labels_to_reach(curve.labels, curve.accuracies, target)),
            )
            if random_curve is not None:
                random_final = float(random_curve.accuracies[-1])
                needed = labels_to_reach(curve.labels, curve.accuracies, random_final)
                row.update(
                    random_final_accuracy=round(random_final, 6),
                    labels_to_random_final=_cell(needed),
                    fraction_of_random_labels=_cell(
                        None if needed is None else needed / float(random_curve.labels[-1]), 4
                    ),
                )
        rows.append(row)
        logger.info(
            "%s seed %d %s %s: %s, final accuracy %s, %s s",
            setup.name, seed, library, strategy, status, row["final_accuracy"], row["seconds"],
        )
    return rows


def _floats(text: object) -> np.ndarray:
    return np.array([float(part) for part in str(text).split(";")])


def summarize(rows: Sequence[dict[str, object]]) -> list[dict[str, object]]:
    """Aggregate per-run rows into mean and std over seeds, one row per dataset, library and strategy."""
    groups: dict[tuple[str, str, str], list[dict[str, object]]] = {}
    for row in rows:
        groups.setdefault((str(row["dataset"]), str(row["library"]), str(row["strategy"])), []).append(row)

    random_final: dict[str, float] = {}
    for (dataset, library, strategy), members in groups.items():
        finals = [float(m["final_accuracy"]) for m in members if m["status"] == "ok"]
        if library == "al_ray" and strategy == "random" and finals:
            random_final[dataset] = float(np.mean(finals))

    summary = []
    for (dataset, library, strategy), members in groups.items():
        row: dict[str, object] = {column: "" for column in SUMMARY_COLUMNS}
        row.update(dataset=dataset, library=library, strategy=strategy, seeds=len(members))
        done = [m for m in members if m["status"] == "ok"]
        statuses = sorted({str(m["status"]) for m in members if m["status"] != "ok"})
        row["status"] = "ok" if not statuses else "; ".join(statuses)
        if done:
            curves = np.array([_floats(m["accuracies"]) for m in done])
            labels = _floats(done[0]["labels"]).astype(np.int64)
            finals = curves[:, -1]
            aulcs = np.array([float(m["aulc"]) for m in done])
            reached = [float(m["labels_to_target"]) for m in done if m["labels_to_target"] != ""]
            row.update(
                status="ok" if len(done) == len(members) else f"ok on {len(done)}/{len(members)}; {row['status']}",
                seeds=len(done),
                final_labels=int(labels[-1]),
                final_accuracy_mean=round(float(finals.mean()), 4),
                final_accuracy_std=round(float(finals.std(ddof=1)) if len(done) > 1 else 0.0, 4),
                aulc_mean=round(float(aulcs.mean()), 4),
                aulc_std=round(float(aulcs.std(ddof=1)) if len(done) > 1 else 0.0, 4),
                full_pool_accuracy_mean=round(float(np.mean([float(m["full_pool_accuracy"]) for m in done])), 4),
                target_accuracy_mean=round(float(np.mean([float(m["target_accuracy"]) for m in done])), 4),
                seeds_reaching_target=len(reached),
                labels_to_target_mean=round(float(np.mean(reached)), 1) if reached else "",
                labels_to_target_std=round(float(np.std(reached, ddof=1)), 1) if len(reached) > 1 else "",
                seconds_mean=round(float(np.mean([float(m["seconds"]) for m in done])), 2),
                labels=_join(labels),
                accuracy_mean=_join(curves.mean(axis=0)),
                accuracy_std=_join(curves.std(axis=0, ddof=1) if len(done) > 1 else np.zeros(labels.size)),
            )
            if dataset in random_final:
                needed = labels_to_reach(labels, curves.mean(axis=0), random_final[dataset])
                row.update(
                    random_final_accuracy_mean=round(random_final[dataset], 4),
                    labels_to_random_final=_cell(needed),
                    fraction_of_random_labels=_cell(None if needed is None else needed / float(labels[-1]), 3),
                )
        summary.append(row)
    return summary


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then rename it to ``path``.

    A reader sees the old file or the whole new one, never half a file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(descriptor)
    try:
        # mkstemp creates the file readable by its owner only; results are shared files.
        os.chmod(temporary, 0o644)
        write(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, object]]) -> None:
    """Write ``rows`` with ``columns`` to ``path`` atomically."""

    def write(temporary: Path) -> None:
        with open(temporary, "w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=list(columns))
            writer.writeheader()
            writer.writerows(rows)

    write_atomically(path, write)


STRATEGY_COLORS = {"margin": "tab:blue", "entropy": "tab:orange", "least_confidence": "tab:green", "random": "tab:gray"}
LIBRARY_STYLES = {"al_ray": "-", "modal": "--", "skactiveml": ":"}


def plot_curves(path: Path, summary: Sequence[dict[str, object]]) -> None:
    """Plot each dataset's mean curves with a band of one standard deviation, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(str(row["dataset"]) for row in summary))
    figure, axes = plt.subplots(1, len(datasets), figsize=(6.5 * len(datasets), 4.8), squeeze=False)
    for axis, dataset in zip(axes[0], datasets):
        for row in summary:
            if row["dataset"] != dataset or row["labels"] == "":
                continue
            labels = _floats(row["labels"])
            mean = _floats(row["accuracy_mean"])
            spread = _floats(row["accuracy_std"])
            color = STRATEGY_COLORS.get(str(row["strategy"]), "black")
            axis.plot(
                labels, mean, LIBRARY_STYLES.get(str(row["library"]), "-"), color=color,
                label=f"{LIBRARY_TITLES[str(row['library'])]} {row['strategy']}",
            )
            axis.fill_between(labels, mean - spread, mean + spread, color=color, alpha=0.08)
        axis.set_title(f"{dataset} (mean ± 1 std over seeds)")
        axis.set_xlabel("labeled rows")
        axis.set_ylabel("test accuracy")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()

    def write(temporary: Path) -> None:
        figure.savefig(temporary, format="png", dpi=110)

    try:
        write_atomically(path, write)
    finally:
        plt.close(figure)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_line() -> str:
    """Return cores, architecture, RAM, Python, the versions the results depend on, and the date."""
    memory_gib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    versions = ", ".join(
        f"{name} {_version(name)}"
        for name in ("al_ray", "numpy", "scipy", "scikit-learn", "modAL-python", "scikit-activeml")
    )
    return (
        f"{os.cpu_count()} cores {platform.machine()}, {memory_gib:.0f} GiB RAM, CPU only, "
        f"Python {platform.python_version()}, {versions}; run on {datetime.date.today().isoformat()}"
    )


def _mean_std(mean: object, std: object) -> str:
    return "–" if mean == "" else f"{float(mean):.3f} ± {float(std):.3f}"


def _target_cell(row: dict[str, object]) -> str:
    if row["labels_to_target_mean"] == "":
        return f"not reached (0/{row['seeds']})"
    spread = "" if row["labels_to_target_std"] == "" else f" ± {float(row['labels_to_target_std']):.0f}"
    return f"{float(row['labels_to_target_mean']):.0f}{spread} ({row['seeds_reaching_target']}/{row['seeds']})"


def _random_cell(row: dict[str, object]) -> str:
    if row["random_final_accuracy_mean"] == "":
        return "–"
    if row["labels_to_random_final"] == "":
        return "not reached"
    return f"{row['labels_to_random_final']} ({100 * float(row['fraction_of_random_labels']):.0f}%)"


TABLE_HEADER = (
    "| dataset | strategy | library | final labels | final accuracy | AULC "
    "| labels to 95% of full pool (seeds reaching) | labels to random's final accuracy (% of random's) "
    "| s per run |\n"
    "|---|---|---|---:|---:|---:|---:|---:|---:|"
)


def format_row(row: dict[str, object]) -> str:
    """Return one markdown table line for a summary row; a run that did not happen shows its status."""
    title = LIBRARY_TITLES.get(str(row["library"]), str(row["library"]))
    head = f"| {row['dataset']} | {row['strategy']} | {title} |"
    if row["labels"] == "":
        return f"{head} {row['status']} | – | – | – | – | – |"
    cells = [
        str(row["final_labels"]),
        _mean_std(row["final_accuracy_mean"], row["final_accuracy_std"]),
        _mean_std(row["aulc_mean"], row["aulc_std"]),
        _target_cell(row),
        _random_cell(row),
        f"{float(row['seconds_mean']):.1f}",
    ]
    return f"{head} " + " | ".join(cells) + " |"


# Targets for the labels needed to reach random's final accuracy, as a fraction of random's labels.
TARGET_FRACTIONS = {"mnist_test": 0.40, "letter_recognition": 0.50}

NOT_COVERED = """\
Not covered yet: the committee, expected-gradient-length and batch-diverse
strategies; the credit and SMS datasets; torch models; peers' strategies that
al_ray lacks. The labels needed are read at the measured rounds, so they move
in steps of one batch."""


def headline_lines(summary: Sequence[dict[str, object]]) -> list[str]:
    """Return one line per dataset and al_ray strategy against the target fraction of random's labels."""
    lines = []
    for row in summary:
        if row["library"] != "al_ray" or row["strategy"] == "random" or row["labels"] == "":
            continue
        target = TARGET_FRACTIONS.get(str(row["dataset"]))
        target_text = "" if target is None else f" (target ≤ {100 * target:.0f}%)"
        if row["labels_to_random_final"] == "":
            lines.append(
                f"- {row['dataset']}, {row['strategy']}: does not reach random's final accuracy "
                f"{float(row['random_final_accuracy_mean']):.3f} within {row['final_labels']} labels{target_text}."
            )
            continue
        fraction = float(row["fraction_of_random_labels"])
        verdict = ""
        if target is not None:
            verdict = " met" if fraction <= target else " not met"
        lines.append(
            f"- {row['dataset']}, {row['strategy']}: reaches random's final accuracy "
            f"{float(row['random_final_accuracy_mean']):.3f} at {row['labels_to_random_final']} of "
            f"{row['final_labels']} labels, {100 * fraction:.0f}%{target_text}:{verdict}."
        )
    return lines


def peer_agreement_lines(summary: Sequence[dict[str, object]]) -> list[str]:
    """Return, per dataset, the largest gap in mean final accuracy between libraries on one strategy."""
    lines = []
    for dataset in dict.fromkeys(str(row["dataset"]) for row in summary):
        gaps = []
        for strategy in STRATEGIES:
            finals = [
                float(row["final_accuracy_mean"])
                for row in summary
                if row["dataset"] == dataset and row["strategy"] == strategy and row["labels"] != ""
            ]
            if len(finals) > 1:
                gaps.append((max(finals) - min(finals), strategy))
        if gaps:
            gap, strategy = max(gaps)
            lines.append(
                f"- {dataset}: the largest gap in mean final accuracy between libraries running "
                f"the same strategy is {gap:.3f} ({strategy})."
            )
    return lines


def render_markdown(
    command: str, setups: Sequence[DatasetSetup], seeds: int, summary: Sequence[dict[str, object]]
) -> str:
    """Return the RESULTS.md section: command, machine, setup, table, findings and gaps."""
    setup_lines = [
        f"- {s.name}: {s.initial_labeled} initial labels, {s.rounds} rounds of {s.batch}, "
        f"pool of {s.pool_size if s.pool_size is not None else 'all remaining'} rows, "
        f"{s.test_size} test rows, logistic regression {s.estimator_params}"
        f"{', standardized' if s.standardize else ''}."
        for s in setups
    ]
    full_pool = {
        str(row["dataset"]): row["full_pool_accuracy_mean"]
        for row in summary
        if row["library"] == "al_ray" and row["full_pool_accuracy_mean"] != ""
    }
    full_pool_lines = [f"- {name}: {float(value):.3f} (target {FULL_POOL_FRACTION:.0%} of it)" for name, value in full_pool.items()]
    parts = [
        "## Label efficiency: uncertainty sampling against random, al_ray and peers",
        "",
        f"`{command}`",
        "",
        f"Machine: {machine_line()}.",
        "",
        f"{seeds} seeds. Every library runs on the same split, estimator, batch and budget "
        "for a seed. The split comes from `al_ray.data.make_split`, and the estimator from "
        "`al_ray.models.build_estimator`, refitted from scratch every round:",
        "",
        *setup_lines,
        "",
        "Full-pool accuracy (mean over seeds), the same estimator fitted on the initial set and the whole pool:",
        "",
        *full_pool_lines,
        "",
        "Accuracy and AULC are mean ± std over seeds. AULC is the trapezoid area under "
        "the accuracy curve divided by the label range. The 95% column gives the mean "
        "labels of the seeds that reached the target. The random-reference column reads "
        "the mean curve against the mean final accuracy of al_ray's random sampling. "
        "Raw rows: `results/label_efficiency.csv`, `results/label_efficiency_summary.csv`; "
        "curves: `results/label_efficiency.png`.",
        "",
        TABLE_HEADER,
        *(format_row(row) for row in summary),
        "",
        "**Labels to reach random's final accuracy.**",
        "",
        *headline_lines(summary),
        "",
        "**Peers.** modAL 0.4.2.1 has no random strategy, so its row says so. Its "
        "`ActiveLearner.teach` fails with scikit-learn 1.9 (it passes `force_all_finite` to "
        "`check_X_y`, removed in scikit-learn 1.8), so each round builds a new "
        "`ActiveLearner` on the labeled rows and calls its `query`.",
        "",
        *peer_agreement_lines(summary),
        "",
        NOT_COVERED,
        "",
    ]
    return "\n".join(parts)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected a whole number >= 1")
    return value


def _name_list(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [name for name in names if name not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"invalid value {text!r}: expected a comma-separated list of {', '.join(allowed)}"
            )
        return names

    return parse


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser; size options left unset keep each dataset's default."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.label_efficiency", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--datasets", type=_name_list(list(DATASETS)), default=list(DATASETS),
        help=f"comma-separated shipped datasets, from {', '.join(DATASETS)}",
    )
    parser.add_argument(
        "--strategies", type=_name_list(STRATEGIES), default=list(STRATEGIES),
        help=f"comma-separated strategies, from {', '.join(STRATEGIES)}",
    )
    parser.add_argument(
        "--libraries", type=_name_list(LIBRARIES), default=list(LIBRARIES),
        help=f"comma-separated libraries, from {', '.join(LIBRARIES)}; al_ray random is the reference",
    )
    parser.add_argument("--seeds", type=_positive_int, default=10, help="seeds 0 .. N-1, one split each")
    parser.add_argument("--rounds", type=_positive_int, help="query rounds per run (default: per dataset)")
    parser.add_argument("--batch", type=_positive_int, help="rows queried per round (default: per dataset)")
    parser.add_argument("--initial", type=_positive_int, help="initially labeled rows (default: per dataset)")
    parser.add_argument("--pool-size", type=_positive_int, help="maximum pool rows (default: per dataset)")
    parser.add_argument("--test-size", type=_positive_int, help="test rows (default: per dataset)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="folder for the CSV, PNG and markdown files")
    return parser


def _overridden(setup: DatasetSetup, args: argparse.Namespace) -> DatasetSetup:
    changes = {
        field: value
        for field, value in (
            ("rounds", args.rounds),
            ("batch", args.batch),
            ("initial_labeled", args.initial),
            ("pool_size", args.pool_size),
            ("test_size", args.test_size),
        )
        if value is not None
    }
    return replace(setup, **changes)


def main(argv: Sequence[str] | None = None) -> list[dict[str, object]]:
    """Run the benchmark, write its files, print the markdown table and return the summary rows."""
    args = build_parser().parse_args(argv)
    setups = [_overridden(DATASETS[name], args) for name in args.datasets]
    command = "python -m benchmarks.label_efficiency " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )

    started = time.perf_counter()
    rows: list[dict[str, object]] = []
    for setup in setups:
        for seed in range(args.seeds):
            rows.extend(run_seed(setup, seed, args.libraries, args.strategies))
            print(f"{setup.name} seed {seed} done, {time.perf_counter() - started:.0f} s", flush=True)

    summary = summarize(rows)
    out_dir: Path = args.out_dir
    write_csv(out_dir / "label_efficiency.csv", CSV_COLUMNS, rows)
    write_csv(out_dir / "label_efficiency_summary.csv", SUMMARY_COLUMNS, summary)
    plot_curves(out_dir / "label_efficiency.png", summary)
    markdown = render_markdown(command.strip(), setups, args.seeds, summary)
    markdown += f"\nTotal wall time of this run: {time.perf_counter() - started:.0f} s.\n"

    def write_markdown(temporary: Path) -> None:
        temporary.write_text(markdown, encoding="utf-8")

    write_atomically(out_dir / "label_efficiency.md", write_markdown)
    print(markdown)
    return summary


if __name__ == "__main__":
    main()
