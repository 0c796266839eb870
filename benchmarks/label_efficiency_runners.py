"""One active-learning run per library: al_ray, modAL and scikit-activeml on the same split.

A run fits a fresh model on the labeled rows every round, measures its test
accuracy, and queries the next batch from the unlabeled pool rows with the
library's own query code. Every library gets the same :class:`Task`: the same
split, estimator, batch size, number of rounds and, for committee strategies,
the same committee members fitted on the same bootstrap samples.

The evaluated model is always the single estimator fitted on every labeled
row, also for committee strategies, whose committee only chooses the queries.
So every curve measures the rows a strategy picked, not the extra accuracy of
an ensemble. (``al-ray run`` evaluates a committee's mean probabilities instead.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import f1_score

from al_ray.data import load_shipped, make_split
from al_ray.loop.runner import POOL_SAMPLE_ROWS
from al_ray.models import SklearnClassifier, build_estimator
from al_ray.models.committee import Committee
from al_ray.scoring.inputs import build_batch
from al_ray.seeding import derive_seed, spawn_seeds
from al_ray.strategies import STRATEGIES as AL_RAY_STRATEGIES
from al_ray.strategies import Need, SelectionContext, make_strategy
from al_ray.training.committee_actors import bootstrap_indices

__all__ = [
    "COMMITTEE_SIZE",
    "LIBRARIES",
    "LIBRARY_TITLES",
    "PEER_EQUIVALENTS",
    "STRATEGIES",
    "Curve",
    "DatasetSetup",
    "PeerQuery",
    "Task",
    "build_task",
    "is_committee_strategy",
    "missing_status",
    "run_library",
]

logger = logging.getLogger(__name__)

LIBRARIES: tuple[str, ...] = ("al_ray", "modal", "skactiveml")
LIBRARY_TITLES = {"al_ray": "al_ray", "modal": "modAL", "skactiveml": "scikit-activeml"}

# The module each peer needs; a peer whose module does not import is skipped.
PEER_MODULES = {"modal": "modAL", "skactiveml": "skactiveml"}

_ORDER = (
    "random", "margin", "entropy", "least_confidence", "expected_gradient_length",
    "information_density", "badge", "coreset", "cluster_margin", "kcenter",
    "vote_entropy", "variation_ratios", "consensus_entropy", "max_disagreement", "bald",
)  # fmt: skip
STRATEGIES: tuple[str, ...] = (
    *(name for name in _ORDER if name in AL_RAY_STRATEGIES),
    *sorted(set(AL_RAY_STRATEGIES) - set(_ORDER)),
)
"""Every al_ray strategy, random first; a strategy added to al_ray's registry joins at the end."""

COMMITTEE_SIZE = 5
"""Members of the bagged committee, as al_ray's default when a strategy needs one."""


@dataclass(frozen=True)
class PeerQuery:
    """A peer's query code that stands for one al_ray strategy."""

    name: str
    """The peer's own name for it, as a user would call it."""

    note: str = ""
    """How it differs from al_ray's strategy; empty when the measure and selector are the same."""


PEER_EQUIVALENTS: dict[str, dict[str, PeerQuery]] = {
    "modal": {
        "margin": PeerQuery("uncertainty.margin_sampling"),
        "entropy": PeerQuery("uncertainty.entropy_sampling"),
        "least_confidence": PeerQuery("uncertainty.uncertainty_sampling"),
        "vote_entropy": PeerQuery(
            "disagreement.vote_entropy_sampling",
            "ties (common with 5 votes) go to the lowest pool position, al_ray breaks them by a seeded key",
        ),
        "consensus_entropy": PeerQuery("disagreement.consensus_entropy_sampling"),
        "max_disagreement": PeerQuery("disagreement.max_disagreement_sampling"),
    },
    "skactiveml": {
        "random": PeerQuery("RandomSampling", "its own random stream, so other rows than al_ray's"),
        "margin": PeerQuery("UncertaintySampling(method='margin_sampling')"),
        "entropy": PeerQuery("UncertaintySampling(method='entropy')"),
        "least_confidence": PeerQuery("UncertaintySampling(method='least_confident')"),
        "vote_entropy": PeerQuery(
            "QueryByCommittee(method='vote_entropy')", "ties are broken at random by its own stream"
        ),
        "variation_ratios": PeerQuery(
            "QueryByCommittee(method='variation_ratios')", "ties are broken at random by its own stream"
        ),
        "bald": PeerQuery(
            "QueryByCommittee(method='KL_divergence')",
            "mean KL divergence of the members from their mean, which equals BALD's mutual information",
        ),
        "badge": PeerQuery(
            "Badge",
            "k-means++ over every unlabeled row on gradients of the raw features; al_ray runs it on the "
            "10 n lowest-margin rows, with the standardized features where the model standardizes",
        ),
        "kcenter": PeerQuery(
            "CoreSet",
            "greedy k-center over every unlabeled row; al_ray runs it on 20 n random candidates",
        ),
    },
}
"""Per peer, the al_ray strategies it has an equivalent for; every other strategy is not in that peer."""


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
    """Unfitted template of the evaluated model; every fit uses a clone."""
    member_estimators: tuple[BaseEstimator, ...]
    """Unfitted committee members, each with its own ``random_state``, as al_ray's trainer builds them."""
    rounds: int
    batch: int

    @property
    def query_seed(self) -> int:
        """Seed of the queries, derived from the run's seed."""
        return derive_seed(self.seed, "query")

    def bootstrap_rows(self, n_labeled: int, round_index: int) -> list[np.ndarray]:
        """Return each committee member's bootstrap sample of the labeled rows in one round.

        The seeds follow al_ray's committee trainer: members' seeds are spawned
        from the run's committee seed per round, so every library bags the same rows.
        """
        seeds = spawn_seeds(
            derive_seed(self.seed, "committee-bootstrap"),
            "committee",
            len(self.member_estimators),
            round_index,
        )
        return [bootstrap_indices(n_labeled, seed) for seed in seeds]


@dataclass(frozen=True)
class Curve:
    """A learning curve: test accuracy after each round against labels used."""

    labels: np.ndarray
    """Labeled rows the model was fitted on, shape ``(rounds + 1,)``, increasing."""
    accuracies: np.ndarray
    """Test accuracy in [0, 1] at each point, shape ``(rounds + 1,)``."""
    final_macro_f1: float
    """Macro-averaged F1 on the test set after the last round."""


def is_committee_strategy(name: str) -> bool:
    """Return True when al_ray's strategy ``name`` reads committee probabilities."""
    return Need.COMMITTEE_PROBABILITIES in AL_RAY_STRATEGIES[name].needs


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

    def estimator(model_seed: int) -> BaseEstimator:
        return build_estimator(
            "logistic_regression", setup.estimator_params, standardize=setup.standardize, seed=model_seed
        )

    initial_features, initial_labels = rows(split.initial_labeled)
    pool_features, pool_labels = rows(split.pool)
    test_features, test_labels = rows(split.test)
    member_seeds = spawn_seeds(seed, "committee-estimator", COMMITTEE_SIZE)
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
        estimator=estimator(derive_seed(seed, "model")),
        member_estimators=tuple(estimator(member_seed) for member_seed in member_seeds),
        rounds=setup.rounds,
        batch=setup.batch,
    )


class _Labeled:
    """Which pool rows are labeled, and the training arrays they give with the initial set."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.mask = np.zeros(task.pool_row_ids.size, dtype=bool)

    def features(self) -> np.ndarray:
        return np.vstack([self.task.initial_features, self.task.pool_features[self.mask]])

    def labels(self) -> np.ndarray:
        return np.concatenate([self.task.initial_labels, self.task.pool_labels[self.mask]])

    def count(self) -> int:
        return self.task.initial_labels.size + int(self.mask.sum())

    def unlabeled(self) -> np.ndarray:
        """Return the positions of the unlabeled pool rows, ascending."""
        return np.flatnonzero(~self.mask)

    def add(self, pool_positions: np.ndarray) -> None:
        positions = np.asarray(pool_positions, dtype=np.int64)
        if positions.size != np.unique(positions).size or self.mask[positions].any():
            raise RuntimeError(f"query returned repeated or already labeled pool rows: {positions.tolist()}")
        self.mask[positions] = True


def _accuracy(predicted: np.ndarray, expected: np.ndarray) -> float:
    return float(np.mean(np.asarray(predicted) == expected))


def _macro_f1(task: Task, predicted: np.ndarray) -> float:
    return float(
        f1_score(
            task.test_labels, predicted, labels=np.arange(len(task.classes)), average="macro", zero_division=0
        )
    )


def _run_rounds(
    task: Task,
    fit_and_predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    query: Callable[[_Labeled, int], np.ndarray],
) -> Curve:
    """Run ``task.rounds`` rounds: fit, measure, then query pool positions, ``task.batch`` at a time.

    ``fit_and_predict`` fits the library's model on the labeled rows and
    returns its predicted classes of the test rows. ``query`` returns the
    pool positions to label next.
    """
    labeled = _Labeled(task)
    counts: list[int] = []
    accuracies: list[float] = []
    predicted = np.empty(0)
    for round_index in range(task.rounds + 1):
        predicted = fit_and_predict(labeled.features(), labeled.labels())
        counts.append(labeled.count())
        accuracies.append(_accuracy(predicted, task.test_labels))
        if round_index == task.rounds:
            break
        labeled.add(query(labeled, round_index))
    return Curve(np.array(counts), np.array(accuracies), _macro_f1(task, predicted))


def _al_ray_committee(task: Task, features: np.ndarray, labels: np.ndarray, round_index: int) -> Committee:
    members = [
        SklearnClassifier(estimator, task.classes).fit(features[rows], labels[rows])
        for estimator, rows in zip(task.member_estimators, task.bootstrap_rows(labels.size, round_index))
    ]
    return Committee(members)


def run_al_ray(task: Task, strategy_name: str) -> Curve:
    """Run al_ray's strategy ``strategy_name`` with the inputs that the loop's scorer supplies.

    ``build_batch`` computes exactly the inputs the strategy declares, and
    ``query`` scores, shortlists and chooses as the loop's in-process path does.
    """
    strategy = make_strategy(strategy_name)
    needs = strategy.needs | strategy.candidate_needs
    model = SklearnClassifier(task.estimator, task.classes)

    def fit_and_predict(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return model.fit(features, labels).predict(task.test_features)

    def query(labeled: _Labeled, round_index: int) -> np.ndarray:
        unlabeled = labeled.unlabeled()
        scorer: Any = model
        if Need.COMMITTEE_PROBABILITIES in needs:
            scorer = _al_ray_committee(task, labeled.features(), labeled.labels(), round_index)
        batch = build_batch(needs, scorer, task.pool_row_ids[unlabeled], task.pool_features[unlabeled])
        context = SelectionContext(
            labeled_features=labeled.features() if "labeled_features" in strategy.context_needs else None,
            pool_sample=_pool_sample(task, round_index) if "pool_sample" in strategy.context_needs else None,
        )
        selection = strategy.query(
            batch, task.batch, derive_seed(task.query_seed, "al_ray", round_index), context=context
        )
        return np.searchsorted(task.pool_row_ids, selection.row_ids)

    return _run_rounds(task, fit_and_predict, query)


def _pool_sample(task: Task, round_index: int) -> np.ndarray:
    """Draw the loop's per-round pool sample for density-weighted strategies: up to 2,000 rows."""
    count = min(POOL_SAMPLE_ROWS, task.pool_row_ids.size)
    rng = np.random.default_rng(derive_seed(task.seed, "pool-sample", round_index))
    return task.pool_features[np.sort(rng.choice(task.pool_row_ids.size, size=count, replace=False))]


def run_modal(task: Task, strategy_name: str) -> Curve:
    """Run modAL's ``ActiveLearner`` or ``Committee`` with the query function equivalent to ``strategy_name``."""
    import modAL.disagreement
    import modAL.uncertainty
    from modAL.models import ActiveLearner
    from modAL.models import Committee as ModalCommittee

    module_name, _, function_name = PEER_EQUIVALENTS["modal"][strategy_name].name.partition(".")
    query_strategy = getattr(
        {"uncertainty": modAL.uncertainty, "disagreement": modAL.disagreement}[module_name], function_name
    )
    committee = is_committee_strategy(strategy_name)
    state: dict[str, Any] = {}

    def fit_and_predict(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
        # NOTE: modAL 0.4.2.1's teach() calls check_X_y(force_all_finite=...),
        # which scikit-learn 1.8 removed. A new learner per round fits on the
        # labeled rows in its constructor, which is what teach() does after
        # appending them, and the query is still modAL's own code.
        learner = ActiveLearner(
            estimator=clone(task.estimator),
            query_strategy=query_strategy,
            X_training=features,
            y_training=labels,
        )
        state["learner"] = learner
        return learner.predict(task.test_features)

    def query(labeled: _Labeled, round_index: int) -> np.ndarray:
        unlabeled = labeled.unlabeled()
        querier: Any = state["learner"]
        if committee:
            features, labels = labeled.features(), labeled.labels()
            members = [
                ActiveLearner(estimator=clone(estimator), X_training=features[rows], y_training=labels[rows])
                for estimator, rows in zip(
                    task.member_estimators, task.bootstrap_rows(labels.size, round_index)
                )
            ]
            querier = ModalCommittee(learner_list=members, query_strategy=query_strategy)
        # modAL returns positions into the array it was given.
        positions, _ = querier.query(task.pool_features[unlabeled], n_instances=task.batch)
        return unlabeled[np.asarray(positions, dtype=np.int64)]

    return _run_rounds(task, fit_and_predict, query)


def _skactiveml_sampler(strategy_name: str, random_state: int) -> Any:
    from skactiveml.pool import (
        Badge,
        CoreSet,
        QueryByCommittee,
        RandomSampling,
        UncertaintySampling,
    )

    name = PEER_EQUIVALENTS["skactiveml"][strategy_name].name
    if name.startswith("UncertaintySampling"):
        return UncertaintySampling(method=name.split("'")[1], random_state=random_state)
    if name.startswith("QueryByCommittee"):
        return QueryByCommittee(method=name.split("'")[1], random_state=random_state)
    samplers = {"RandomSampling": RandomSampling, "Badge": Badge, "CoreSet": CoreSet}
    return samplers[name](random_state=random_state)


def run_skactiveml(task: Task, strategy_name: str) -> Curve:
    """Run scikit-activeml's pool strategy equivalent to ``strategy_name``.

    scikit-activeml takes the initial and pool rows together, with the labels
    of unlabeled rows set to ``MISSING_LABEL``, and returns positions in them.
    """
    from skactiveml.classifier import SklearnClassifier as SkactivemlClassifier
    from skactiveml.utils import MISSING_LABEL

    # scikit-learn and scikit-activeml take int seeds below 2**32 only.
    random_state = task.query_seed % 2**32
    n_initial = task.initial_labels.size
    features = np.vstack([task.initial_features, task.pool_features])
    classes = np.arange(len(task.classes))
    sampler = _skactiveml_sampler(strategy_name, random_state)
    committee = is_committee_strategy(strategy_name)
    classifier = SkactivemlClassifier(clone(task.estimator), classes=classes, random_state=random_state)

    def fit_and_predict(labeled_features: np.ndarray, labels: np.ndarray) -> np.ndarray:
        classifier.fit(labeled_features, labels)
        return classifier.predict(task.test_features)

    def query(labeled: _Labeled, round_index: int) -> np.ndarray:
        # Row i of `features` is initial row i, then pool row i - n_initial.
        known = np.full(features.shape[0], MISSING_LABEL, dtype=np.float64)
        known[:n_initial] = task.initial_labels
        known[n_initial:][labeled.mask] = task.pool_labels[labeled.mask]
        if committee:
            labeled_features, labels = labeled.features(), labeled.labels()
            ensemble = [
                SkactivemlClassifier(clone(estimator), classes=classes, random_state=random_state).fit(
                    labeled_features[rows], labels[rows]
                )
                for estimator, rows in zip(
                    task.member_estimators, task.bootstrap_rows(labels.size, round_index)
                )
            ]
            chosen = sampler.query(
                features, known, ensemble=ensemble, fit_ensemble=False, batch_size=task.batch
            )
        elif strategy_name in ("random", "kcenter"):
            chosen = sampler.query(features, known, batch_size=task.batch)
        else:
            chosen = sampler.query(features, known, clf=classifier, fit_clf=False, batch_size=task.batch)
        chosen = np.asarray(chosen, dtype=np.int64)
        if (chosen < n_initial).any():
            raise RuntimeError(
                f"scikit-activeml queried labeled initial rows {chosen[chosen < n_initial].tolist()}"
            )
        return chosen - n_initial

    return _run_rounds(task, fit_and_predict, query)


RUNNERS: dict[str, Callable[[Task, str], Curve]] = {
    "al_ray": run_al_ray,
    "modal": run_modal,
    "skactiveml": run_skactiveml,
}


def missing_status(library: str, strategy_name: str) -> str | None:
    """Return why ``library`` cannot run ``strategy_name`` here, or None when it can."""
    module = PEER_MODULES.get(library)
    if module is None:
        return None
    try:
        __import__(module)
    except ImportError:
        return f"skipped: {module} is not installed"
    if strategy_name not in PEER_EQUIVALENTS[library]:
        return f"not in {LIBRARY_TITLES[library]}"
    return None


def run_library(task: Task, library: str, strategy_name: str) -> Curve:
    """Run ``library``'s equivalent of ``strategy_name`` on ``task``."""
    return RUNNERS[library](task, strategy_name)
