"""A synthetic pool whose features are a function of ``(seed, row_id)`` alone.

Every tool in the scoring benchmarks scores the same rows. In-memory tools fill
an array, and Ray Data generates the same rows block by block inside its
workers, so a pool larger than memory needs neither the driver nor a disk.

Feature ``j`` of row ``r`` is uniform float32 in [0, 1), drawn from numpy's
Philox counter-based generator keyed by the seed, at stream position
``r * n_features + j``. Philox yields 8 float32 draws per counter step, so a
block starting at any row sets the counter to that position and gets the same
values as one pass over the whole pool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "CLASSES",
    "FEATURES",
    "MODEL_NAMES",
    "ROW_ID",
    "fill_pool",
    "fit_models",
    "make_generate_batch",
    "pool_bytes",
    "pool_dataset",
    "row_features",
    "training_sample",
]

ROW_ID = "row_id"
FEATURES = "features"
CLASSES = 10
FLOAT32_BYTES = 4
_DRAWS_PER_COUNTER = 8  # Philox4x64 makes 4 uint64 per counter step, each split into 2 uint32 draws.
_FILL_ROWS = 65_536
TRAINING_ROWS = 2_000
MODEL_NAMES = ("logistic", "mlp")


def pool_bytes(rows: int, n_features: int) -> int:
    """Return the bytes of a float32 pool of ``rows`` × ``n_features``."""
    return rows * n_features * FLOAT32_BYTES


def row_features(first_row: int, rows: int, n_features: int, seed: int) -> np.ndarray:
    """Return the features of rows ``first_row .. first_row + rows - 1``, shape ``(rows, n_features)``, float32."""
    position = first_row * n_features
    skip = position % _DRAWS_PER_COUNTER
    generator = np.random.Generator(np.random.Philox(key=seed, counter=position // _DRAWS_PER_COUNTER))
    draws = generator.random(rows * n_features + skip, dtype=np.float32)
    return draws[skip:].reshape(rows, n_features)


def fill_pool(rows: int, n_features: int, seed: int) -> np.ndarray:
    """Return the whole pool as one array, built in slices so that no float64 copy is made.

    Raises MemoryError when the array does not fit the process's address-space limit.
    """
    pool = np.empty((rows, n_features), dtype=np.float32)
    for start in range(0, rows, _FILL_ROWS):
        stop = min(rows, start + _FILL_ROWS)
        pool[start:stop] = row_features(start, stop - start, n_features, seed)
    return pool


def make_generate_batch(n_features: int, seed: int) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """Return a Ray Data batch function that adds the features of each ``id`` in a ``ray.data.range`` batch.

    The batch's ids must be consecutive, as ``ray.data.range`` makes them.
    """

    def generate_batch(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        row_ids = np.asarray(batch["id"], dtype=np.int64)
        if row_ids.size == 0:
            return {ROW_ID: row_ids, FEATURES: np.empty((0, n_features), dtype=np.float32)}
        first = int(row_ids[0])
        if row_ids[-1] - first != row_ids.size - 1:
            raise ValueError(f"expected consecutive row ids, got a batch from {first} to {int(row_ids[-1])}")
        return {ROW_ID: row_ids, FEATURES: row_features(first, row_ids.size, n_features, seed)}

    return generate_batch


def pool_dataset(rows: int, n_features: int, seed: int, num_blocks: int, generate_num_cpus: float = 1.0):
    """Return a lazy Ray dataset of the pool: ``row_id`` int64 and ``features`` float32 tensors.

    Nothing is generated until the dataset executes. Call ``materialize()`` to
    keep the blocks in the object store.
    """
    import ray.data

    return ray.data.range(rows, override_num_blocks=num_blocks).map_batches(
        make_generate_batch(n_features, seed),
        batch_format="numpy",
        batch_size=None,
        num_cpus=generate_num_cpus,
    )


def training_sample(n_features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return labeled training rows: features from rows past any pool, labels from a random linear teacher.

    The teacher's logits carry Gumbel noise, so the classes overlap and a
    fitted model has rows of every margin, not only confident ones.
    """
    # Row ids from 2**40 on never collide with a pool of fewer rows.
    features = row_features(2**40, TRAINING_ROWS, n_features, seed)
    rng = np.random.default_rng([seed, n_features])
    teacher = rng.standard_normal((n_features, CLASSES)) * (8.0 / np.sqrt(n_features))
    logits = (features.astype(np.float64) - 0.5) @ teacher + rng.gumbel(size=(TRAINING_ROWS, CLASSES))
    return features, logits.argmax(axis=1)


def fit_models(n_features: int, seed: int, names: Sequence[str] = MODEL_NAMES) -> dict[str, object]:
    """Fit the benchmark's models named in ``names`` on the training sample, wrapped as al_ray classifiers.

    - ``logistic``: scikit-learn ``LogisticRegression(max_iter=300)``.
    - ``mlp``: scikit-learn ``MLPClassifier`` with one hidden layer of 100 ReLU units.

    Both are fitted in float64 by ``al_ray.models.SklearnClassifier``, so
    every tool scores with the same weights.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    from al_ray.models import SklearnClassifier

    features, labels = training_sample(n_features, seed)
    classes = [str(label) for label in range(CLASSES)]
    estimators = {
        "logistic": LogisticRegression(max_iter=300),
        "mlp": MLPClassifier(hidden_layer_sizes=(100,), max_iter=200, random_state=seed % 2**32),
    }
    unknown = sorted(set(names) - set(estimators))
    if unknown:
        raise ValueError(f"unknown models {unknown}; expected names from {', '.join(MODEL_NAMES)}")
    estimators = {name: estimators[name] for name in names}
    models = {}
    with warnings.catch_warnings():
        # The MLP may stop at max_iter; its weights are still a fixed, seeded model to score with.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, estimator in estimators.items():
            models[name] = SklearnClassifier(estimator, classes).fit(features, labels)
    return models
