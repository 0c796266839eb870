"""TaskTrainer: one scikit-learn fit as a Ray task, equal to the same fit in the driver."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from al_ray.training import LocalTrainer, TaskTrainer


def test_task_fit_equals_driver_fit(ray_local):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 3))
    labels = (features[:, 0] > 0).astype(np.int64)
    estimator = LogisticRegression(max_iter=200)

    remote = TaskTrainer(estimator, ("neg", "pos"), num_cpus=0.5).fit(features, labels, round_index=1)
    local = LocalTrainer(estimator, ("neg", "pos")).fit(features, labels, round_index=1)

    np.testing.assert_array_equal(remote.predict_proba(features), local.predict_proba(features))
    assert remote.classes == ("neg", "pos")
