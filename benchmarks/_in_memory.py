"""Score a whole in-memory pool with one tool, in a child process under a memory limit.

The in-memory tools hold the pool as one array in one process:

- ``al_ray_local``: ``al_ray.scoring.score_pool`` with ``scoring.mode: local``
  (batches of ``batch_rows`` in this process, the loop's in-process path).
- ``numpy``: a plain single-process numpy scorer (:func:`numpy_margin_top_n`).
- ``modal``: ``modAL.uncertainty.margin_sampling`` on the scikit-learn estimator.
- ``skactiveml``: ``skactiveml.pool.UncertaintySampling(method="margin_sampling")``.

:func:`run_in_memory` starts ``python -m benchmarks._in_memory SPEC``, which
sets ``RLIMIT_AS`` before it builds the pool. A tool that needs more memory
than the limit then gets a ``MemoryError`` (reported as "did not fit")
instead of waking the kernel's OOM killer, which may kill another process.
The child prints one JSON line: its
status, the query's seconds, the selected row ids and its peak RSS
(``ru_maxrss``, which the kernel keeps exactly, so no sample is missed).
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

__all__ = ["IN_MEMORY_TOOLS", "InMemoryResult", "InMemorySpec", "numpy_margin_top_n", "run_in_memory"]

IN_MEMORY_TOOLS = ("al_ray_local", "numpy", "modal", "skactiveml")
PEER_MODULES = {"modal": "modAL", "skactiveml": "skactiveml"}
_NUMPY_CHUNK_ROWS = 65_536
_WARM_UP_ROWS = 1_000
_REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class InMemorySpec:
    """One child run: a tool, a pool shape, a model and the child's address-space limit."""

    tool: str
    rows: int
    n_features: int
    model: str
    models_path: str
    """Pickle of ``{model name: fitted al_ray SklearnClassifier}`` for this feature count."""
    n: int
    seed: int
    batch_rows: int
    limit_bytes: int


@dataclass
class InMemoryResult:
    """A child's report. ``status`` is ``ok``, ``did_not_fit``, ``not_installed`` or ``failed``."""

    status: str
    seconds: float = 0.0
    peak_rss_bytes: int = 0
    pool_build_s: float = 0.0
    stage: str = ""
    detail: str = ""
    selected: list[int] | None = None


def _set_limit(limit_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))


def run_in_memory(spec: InMemorySpec, timeout_s: float) -> InMemoryResult:
    """Run ``spec`` in a child process and return its result; a crash or timeout becomes ``failed``."""
    command = [sys.executable, "-m", "benchmarks._in_memory", json.dumps(asdict(spec))]
    try:
        completed = subprocess.run(
            command,
            check=False,
            cwd=_REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return InMemoryResult("failed", detail=f"timed out after {timeout_s:.0f} s")
    lines = completed.stdout.strip().splitlines()
    if completed.returncode == 0 and lines:
        return InMemoryResult(**json.loads(lines[-1]))
    tail = completed.stderr.strip().splitlines()[-3:]
    status = "did_not_fit" if "memory" in completed.stderr.lower() else "failed"
    return InMemoryResult(status, detail=f"exit status {completed.returncode}: {' | '.join(tail)}")


def numpy_margin_top_n(pool: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """Return the positions of the ``n`` pool rows with the smallest softmax margin, smallest first.

    ``layers`` are ``(weights, bias)`` pairs: ReLU between layers, softmax
    after the last. The pool is read in chunks of 65,536 rows and a running
    top ``n`` is kept with ``argpartition``, so memory beyond the pool is a
    few chunk-sized arrays.
    """
    layers = [(np.asarray(w, dtype=np.float32), np.asarray(b, dtype=np.float32)) for w, b in layers]
    best_rows = np.empty(0, dtype=np.int64)
    best_margins = np.empty(0, dtype=np.float32)
    for start in range(0, pool.shape[0], _NUMPY_CHUNK_ROWS):
        hidden = pool[start : start + _NUMPY_CHUNK_ROWS]
        for weights, bias in layers[:-1]:
            hidden = np.maximum(hidden @ weights + bias, 0.0)
        logits = hidden @ layers[-1][0] + layers[-1][1]
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits, out=logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        top_two = np.partition(probabilities, probabilities.shape[1] - 2, axis=1)[:, -2:]
        rows = np.concatenate([best_rows, np.arange(start, start + logits.shape[0], dtype=np.int64)])
        margins = np.concatenate([best_margins, top_two[:, 1] - top_two[:, 0]])
        if margins.size > n:
            keep = np.argpartition(margins, n - 1)[:n]
            rows, margins = rows[keep], margins[keep]
        best_rows, best_margins = rows, margins
    return best_rows[np.argsort(best_margins, kind="stable")]


def _numpy_layers(estimator) -> list[tuple[np.ndarray, np.ndarray]]:
    if hasattr(estimator, "coefs_"):
        if estimator.activation != "relu" or estimator.out_activation_ != "softmax":
            raise ValueError(
                f"the numpy scorer implements ReLU hidden layers and a softmax output, got "
                f"{estimator.activation!r} and {estimator.out_activation_!r}"
            )
        return list(zip(estimator.coefs_, estimator.intercepts_))
    return [(estimator.coef_.T, estimator.intercept_)]


def _prepare_query(spec: InMemorySpec, pool: np.ndarray, model) -> Callable[[], np.ndarray]:
    """Return the tool's query on the whole pool as a call that returns the selected positions.

    Everything that is not the query (imports, wrapping the model, the
    label array a peer needs) happens here, before the clock starts.
    """
    estimator = model.fitted_estimators()["model"]
    if spec.tool == "al_ray_local":
        from al_ray.config import ScoringConfig
        from al_ray.data.pool import Pool
        from al_ray.scoring import score_pool
        from al_ray.strategies import make_strategy

        config = ScoringConfig(mode="local", batch_rows=spec.batch_rows)
        strategy = make_strategy("margin")
        excluded = np.empty(0, dtype=np.int64)
        pool_rows = Pool(np.arange(spec.rows, dtype=np.int64), pool)
        return lambda: score_pool(pool_rows, strategy, model, excluded, spec.n, spec.seed, config).selection.row_ids
    if spec.tool == "numpy":
        layers = _numpy_layers(estimator)
        return lambda: numpy_margin_top_n(pool, layers, spec.n)
    if spec.tool == "modal":
        from modAL.uncertainty import margin_sampling

        return lambda: margin_sampling(estimator, pool, n_instances=spec.n)[0]
    if spec.tool == "skactiveml":
        from skactiveml.pool import UncertaintySampling
        from skactiveml.utils import MISSING_LABEL

        # The warm-up and the timed query share one fit: the cache key ignores the pool size.
        classifier = _skactiveml_classifier(replace(spec, rows=0, n=0), model)
        labels = np.full(spec.rows, MISSING_LABEL, dtype=np.float64)
        sampler = UncertaintySampling(method="margin_sampling", random_state=spec.seed % 2**32)
        return lambda: sampler.query(pool, labels, clf=classifier, fit_clf=False, batch_size=spec.n)
    raise ValueError(f"unknown tool {spec.tool!r}; expected one of {', '.join(IN_MEMORY_TOOLS)}")


@functools.cache
def _skactiveml_classifier(spec: InMemorySpec, model):
    """Return scikit-activeml's wrapper fitted on the same training rows and estimator as ``model``.

    Both fits are deterministic (lbfgs, and the MLP's seeded Adam), so the
    wrapped estimator should get the same weights. Raises ValueError if its
    probabilities on the training rows differ from ``model``'s.
    """
    import warnings

    from skactiveml.classifier import SklearnClassifier as SkactivemlClassifier
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning

    from benchmarks._synthetic_pool import CLASSES, training_sample

    features, labels = training_sample(spec.n_features, spec.seed)
    features = features.astype(np.float64)
    wrapper = SkactivemlClassifier(clone(model.estimator), classes=np.arange(CLASSES), random_state=spec.seed % 2**32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        wrapper.fit(features, labels)
    difference = float(np.abs(wrapper.predict_proba(features) - model.predict_proba(features)).max())
    if difference > 1e-6:
        raise ValueError(
            f"scikit-activeml's refitted {spec.model} differs from the shared model by {difference:.3g} "
            "in probability; fit the shared models with the same seed as the pool"
        )
    return wrapper


def _peak_rss_bytes() -> int:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child_main(spec: InMemorySpec) -> InMemoryResult:
    """Build the pool, run the query once and return the result; MemoryError becomes ``did_not_fit``."""
    from benchmarks._synthetic_pool import fill_pool

    module = PEER_MODULES.get(spec.tool)
    if module is not None:
        import importlib.util

        if importlib.util.find_spec(module) is None:
            return InMemoryResult("not_installed", detail=f"{module} is not installed (pip install -e '.[bench]')")
    with open(spec.models_path, "rb") as stream:
        model = pickle.load(stream)[spec.model]
    stage = "pool"
    try:
        started = time.perf_counter()
        pool = fill_pool(spec.rows, spec.n_features, spec.seed)
        pool_build_s = time.perf_counter() - started
        stage = "query"
        # One untimed query on a small slice first, so that lazy imports and
        # BLAS start-up are not charged to the timed call, as for Ray Data.
        warm_rows = min(spec.rows, _WARM_UP_ROWS)
        warm_spec = replace(spec, rows=warm_rows, n=min(spec.n, warm_rows))
        _prepare_query(warm_spec, pool[:warm_rows], model)()
        query = _prepare_query(spec, pool, model)
        started = time.perf_counter()
        selected = np.asarray(query(), dtype=np.int64)
        seconds = time.perf_counter() - started
    except MemoryError as error:
        return InMemoryResult(
            "did_not_fit",
            peak_rss_bytes=_peak_rss_bytes(),
            stage=stage,
            detail=f"MemoryError while {'building the pool' if stage == 'pool' else 'querying'}: {error}",
        )
    return InMemoryResult(
        "ok",
        seconds=seconds,
        peak_rss_bytes=_peak_rss_bytes(),
        pool_build_s=pool_build_s,
        stage=stage,
        selected=[int(row) for row in selected],
    )


if __name__ == "__main__":
    child_spec = InMemorySpec(**json.loads(sys.argv[1]))
    # Set here rather than in a preexec_fn, which is unsafe when the parent runs threads (Ray's, a sampler's).
    _set_limit(child_spec.limit_bytes)
    result = child_main(child_spec)
    print(json.dumps(asdict(result)), flush=True)
    # Skip interpreter teardown of a pool of many GB; the result is already printed.
    os._exit(0)
