"""The active-learning loop: score, select, post tasks, collect answers, retrain, evaluate.

Every round's state lives in the label store before the next step starts:
the selection is stored as tasks (with the round number) before any label is
requested, answers are stored as they arrive, and the round is marked
completed only after its model file and metrics are written. A run killed at
any point resumes from the last completed round, re-requests the answers of
tasks already posted, and never queries a row twice.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

from al_ray.config import RunConfig
from al_ray.data import LabeledData, Split, load_shipped, load_table, make_split
from al_ray.cluster.previous_run import submitted_job_fix
from al_ray.data.pool import Pool
from al_ray.loop.run_lock import RunLock
from al_ray.errors import ResumeError
from al_ray.labels import LabelSource, LabelStore, SimulatedOracle
from al_ray.loop.model_io import load_model, save_model
from al_ray.loop.outputs import CURVE_COLUMNS, write_csv_atomic, write_learning_curve_plot
from al_ray.loop.served_rows import ServedRowsIntake
from al_ray.loop.state import config_fingerprint, describe_difference
from al_ray.models import PriorClassifier, SklearnClassifier
from al_ray.monitoring.loop_monitor import LoopMonitor
from al_ray.training import build_trainer
from al_ray.runtime import ray_session
from al_ray.scoring import choose_path, score_pool
from al_ray.seeding import derive_seed
from al_ray.strategies import Need, SelectionContext, make_strategy

__all__ = ["RoundRecord", "RunResult", "ActiveLearningLoop", "default_output_dir"]

logger = logging.getLogger(__name__)

STATUS_COMPLETED = "completed"
STATUS_POOL_EXHAUSTED = "pool exhausted"
STATUS_BUDGET_REACHED = "label budget reached"
STATUS_TARGET_REACHED = "target accuracy reached"
STATUS_STABILIZED = "predictions stabilized"

# Rows of the pool that density-weighted strategies compare candidates against.
POOL_SAMPLE_ROWS = 2000

# Used in place of a strategy that needs a model while fewer than two classes
# are labeled: it needs features only.
COLD_START_STRATEGY = "kcenter"


@dataclass(frozen=True)
class RoundRecord:
    """Metrics of one completed round."""

    round_index: int
    n_labeled: int
    n_queried: int
    accuracy: float
    macro_f1: float
    seconds: float
    scoring_path: str
    scoring_rows_per_s: float


@dataclass
class RunResult:
    """The outcome of a run: its status, output folder and completed rounds."""

    status: str
    output_dir: Path
    rounds: list[RoundRecord] = field(default_factory=list)
    mlflow_run_id: str | None = None

    @property
    def final(self) -> RoundRecord | None:
        return self.rounds[-1] if self.rounds else None


def default_output_dir(config: RunConfig) -> Path:
    """Return ``config.output``, or ``runs/<name>/<strategy>`` under the working directory."""
    if config.output is not None:
        return Path(config.output)
    return Path("runs") / config.name / config.strategy.name


def load_data(config: RunConfig) -> LabeledData:
    """Load the dataset named by the config's data section."""
    data_config = config.data
    if data_config.dataset is not None:
        return load_shipped(data_config.dataset)
    # Object storage (s3://, gs://, ...) is read through a local copy.
    from al_ray.cluster.storage import local_copy

    with local_copy(data_config.path) as path:
        return load_table(
            path,
            data_config.label_column,
            row_id_column=data_config.row_id_column,
            feature_columns=data_config.feature_columns,
        )


class ActiveLearningLoop:
    """Run (or resume) the rounds that one config describes.

    Parameters
    ----------
    config : RunConfig
    output_dir : path, optional
        Defaults to :func:`default_output_dir`.
    tracking_root : path, optional
        Folder of the default MLflow store when ``tracking.uri`` is unset;
        defaults to ``output_dir``. Comparisons share one store across runs.
    label_source : LabelSource, optional
        The annotator of tasks; defaults to a simulated oracle over the dataset's labels.
    on_round : callable, optional
        Called with each :class:`RoundRecord` as soon as the round is completed.
    ray_stack : ExitStack, optional
        Where a Ray session started on first need is kept. Pass one that outlives
        several loops to share a session; by default the session ends with the run.
    split : Split, optional
        The initial labeled set, pool and test set to use in place of the seeded
        split that the config's data section describes. The watcher's replay
        passes the rows of a stream replayed so far as the pool.
    """

    def __init__(
        self,
        config: RunConfig,
        *,
        output_dir: str | Path | None = None,
        tracking_root: str | Path | None = None,
        label_source: LabelSource | None = None,
        on_round: Callable[[RoundRecord], None] | None = None,
        ray_stack: contextlib.ExitStack | None = None,
        split: Split | None = None,
    ) -> None:
        self.config = config
        self.output_dir = Path(output_dir) if output_dir is not None else default_output_dir(config)
        self.tracking_root = Path(tracking_root) if tracking_root is not None else self.output_dir
        self._label_source = label_source
        self.on_round = on_round or (lambda record: None)
        self.strategy = make_strategy(config.strategy.name, config.strategy.params)
        self.cold_start_strategy = make_strategy(COLD_START_STRATEGY)
        self._ray_stack = ray_stack
        self._split = split

    # The run, top to bottom.

    def run(self, *, resume: bool = False) -> RunResult:
        """Run every round the config requests; with ``resume``, continue a killed run."""
        config = self.config
        data = load_data(config)
        test_size = int(config.data.test_size) if config.data.test_size >= 1 else config.data.test_size
        split = self._split if self._split is not None else make_split(
            data,
            initial_labeled=config.data.initial_labeled,
            test_size=test_size,
            seed=derive_seed(config.seed, "split"),
            pool_size=config.data.pool_size,
        )
        # Built before any output exists, so a bad estimator writes nothing.
        trainer = build_trainer(
            config,
            data.classes,
            needs_committee=Need.COMMITTEE_PROBABILITIES in self.strategy.needs,
            n_features=data.features.shape[1],
            storage_path=self.output_dir / "ray_train",
        )
        store_location = config.labels.store or (self.output_dir / "labels.db")
        self._check_output(resume, store_location)
        if config.tracking.enabled and config.tracking.uri:
            # A tracking store that cannot be reached fails here, before any output
            # exists; MLflow's client would retry for minutes.
            from al_ray.tracking.registry import check_reachable

            check_reachable(config.tracking.uri)
        self.output_dir.mkdir(parents=True, exist_ok=True)

        with contextlib.ExitStack() as stack:
            stack.enter_context(RunLock(store_location))
            store = stack.enter_context(LabelStore(store_location))
            self._check_fingerprint(store, resume)
            # Metrics endpoint and audit log, when monitoring enables them.
            self._monitor = LoopMonitor.open(config, self.output_dir)
            stack.callback(self._monitor.close)
            tracker = self._open_tracker(store)
            self._registry = self._open_registry(tracker)
            self._deployer = self._open_deployer()
            source = self._label_source or _LABEL_SOURCES[config.labels.source](config, store, data)
            self._source_metrics = source.metrics
            pool_rows = data.subset(split.pool)
            pool = Pool(pool_rows.row_ids, pool_rows.features)
            served = (
                ServedRowsIntake(config.serving.feedback.path, data, split)
                if config.serving.feedback.path is not None
                else None
            )
            self._stop_features = self._stop_set_features(data, split)
            session = _LazyRay(self._ray_stack or stack, config)
            self._ray_session = session
            if trainer.needs_ray:
                session.ensure()
            stack.callback(trainer.close)
            status = STATUS_COMPLETED
            try:
                model = self._run_round_zero(store, source, data, split, trainer, tracker)
                for round_index in range(1, config.loop.rounds + 1):
                    if store.round_status(round_index) == "completed":
                        model = None  # loaded from the last completed round when needed
                        continue
                    if model is None:
                        model = load_model(self._model_path(round_index - 1))
                    if served is not None and store.round_status(round_index) != "queried":
                        pool = served.extend(pool, store, round_index)
                    outcome = self._run_round(
                        round_index, store, source, data, split, pool, model, trainer, tracker, session
                    )
                    if isinstance(outcome, str):
                        status = outcome
                        break
                    model = outcome
            except BaseException:
                if tracker is not None:
                    tracker.finish("FAILED")
                raise
            finally:
                # Before the Ray session ends, which the exit stack does later.
                if self._deployer is not None:
                    self._deployer.close()
            store.set_meta("status", status)
            self._write_outputs(store)
            rounds = [self._record_from_store(row) for row in store.round_records() if row["status"] == "completed"]
            if model is None:
                model = load_model(self._model_path(rounds[-1].round_index))
            if tracker is not None:
                self._finish_tracking(tracker, model, data, status, rounds)
            run_id = store.get_meta("mlflow_run_id")
        logger.info("run %s ended: %s after %d rounds", config.name, status, len(rounds) - 1)
        return RunResult(status=status, output_dir=self.output_dir, rounds=rounds, mlflow_run_id=run_id)

    def _run_round_zero(self, store, source, data, split, trainer, tracker) -> SklearnClassifier:
        """Label the initial set through the label source and train the first model."""
        if store.round_status(0) == "completed":
            return load_model(self._model_path(0))
        started = time.perf_counter()
        store.begin_round(0)
        store.post_tasks(0, split.initial_labeled.tolist())
        store.mark_round_queried(0)
        self._collect(store, source)
        model, train_seconds, fit_report = self._train(store, data, trainer, 0)
        self._complete_round(
            store, tracker, data, split, model, 0, previous=None, n_queried=len(split.initial_labeled),
            seconds=time.perf_counter() - started, scoring=None, train_seconds=train_seconds,
            fit_report=fit_report,
        )
        return model

    def _run_round(
        self, round_index, store, source, data, split, pool, model, trainer, tracker, session
    ) -> SklearnClassifier | str:
        """Run one query round; return the new model, or the status that ends the run."""
        config = self.config
        started = time.perf_counter()
        scoring = None
        held_back = None
        if store.round_status(round_index) != "queried":
            # Rows queried before this round only: if an earlier attempt at this
            # round stored its tasks but died before marking the round queried,
            # scoring again must reproduce that selection, not skip past it.
            excluded = store.queried_row_ids(before_round=round_index)
            n_labeled = len(excluded)
            n = config.loop.batch_size
            if config.loop.label_budget is not None:
                n = min(n, config.loop.label_budget - n_labeled)
                if n <= 0:
                    logger.info("label budget of %d reached; stopping", config.loop.label_budget)
                    return STATUS_BUDGET_REACHED
            store.begin_round(round_index)
            strategy = self._round_strategy(store, round_index)
            if choose_path(config.scoring, len(pool)) == "ray":
                session.ensure()
            held_back = self._hold_back_outliers(data, split, pool, excluded, round_index)
            scoring = score_pool(
                pool,
                strategy,
                model,
                excluded if held_back is None else np.union1d(excluded, held_back.row_ids),
                n,
                derive_seed(config.seed, "select", round_index),
                config.scoring,
                self._selection_context(strategy, store, data, pool, round_index),
            )
            selection = scoring.selection
            if len(selection) == 0:
                logger.info("round %d: the pool is exhausted; stopping", round_index)
                return STATUS_POOL_EXHAUSTED
            if len(selection) < n:
                logger.warning(
                    "round %d: only %d unlabeled rows are left in the pool; querying %d instead of %d",
                    round_index, len(selection), len(selection), n,
                )
            # Stored before the tasks, so a round resumed after `queried` can
            # still name the strategy that selected its rows.
            store.set_meta(_strategy_key(round_index), scoring.strategy)
            store.post_tasks(
                round_index,
                selection.row_ids.tolist(),
                selection.utilities.tolist(),
                model_version=self._model_version(store, round_index - 1),
            )
            store.mark_round_queried(round_index)
        else:
            logger.info("round %d: resuming with the tasks posted before the interruption", round_index)
        self._collect(store, source)
        new_model, train_seconds, fit_report = self._train(store, data, trainer, round_index, previous=model)
        self._complete_round(
            store, tracker, data, split, new_model, round_index,
            previous=model,
            n_queried=len(store.tasks(round_index=round_index)),
            seconds=time.perf_counter() - started, scoring=scoring, train_seconds=train_seconds,
            fit_report=fit_report, outliers=held_back,
        )
        if round_index < config.loop.rounds:
            reason = self._stop_reason(store)
            if reason is not None:
                return reason
        return new_model

    def _stop_reason(self, store: LabelStore) -> str | None:
        """Return why the run should stop after the last completed round, or None."""
        loop = self.config.loop
        records = [row for row in store.round_records() if row["status"] == "completed"]
        last = records[-1]["metrics"]
        if loop.label_budget is not None and len(store.queried_row_ids()) >= loop.label_budget:
            return STATUS_BUDGET_REACHED
        if loop.target_accuracy is not None and last["accuracy"] >= loop.target_accuracy:
            logger.info("accuracy %.4f reached the target %.4f; stopping", last["accuracy"], loop.target_accuracy)
            return STATUS_TARGET_REACHED
        if loop.stabilizing is not None:
            kappas = [row["metrics"].get("stop_set_kappa") for row in records[-loop.stabilizing.window:]]
            if len(kappas) == loop.stabilizing.window and all(
                kappa is not None and kappa >= loop.stabilizing.threshold for kappa in kappas
            ):
                logger.info("stop-set kappa %s >= %.3f for %d rounds; stopping", kappas, loop.stabilizing.threshold, len(kappas))
                return STATUS_STABILIZED
        return None

    # Steps of a round.

    def _stop_set_features(self, data: LabeledData, split: Split) -> np.ndarray | None:
        """Return the features of the stop set, or None when stabilizing is off.

        The stop set is unlabeled pool rows drawn once from the root seed, so a
        resumed run compares models on the same rows.
        """
        stabilizing = self.config.loop.stabilizing
        if stabilizing is None:
            return None
        rng = np.random.default_rng(derive_seed(self.config.seed, "stop-set"))
        size = min(stabilizing.stop_set_size, len(split.pool))
        rows = np.sort(rng.choice(split.pool, size=size, replace=False))
        return data.subset(rows).features

    def _stop_set_kappa(self, previous, model) -> float | None:
        """Return Cohen's kappa between the previous and the new model on the stop set."""
        if self._stop_features is None or previous is None:
            return None
        before = previous.predict(self._stop_features)
        after = model.predict(self._stop_features)
        if np.array_equal(before, after):
            # Kappa is 0/0 when both models predict one class for every row; they agree.
            return 1.0
        return float(cohen_kappa_score(before, after))

    def _round_strategy(self, store: LabelStore, round_index: int):
        """Return the configured strategy, or the cold-start one while it cannot run.

        A strategy that needs a model cannot run on the label prior, which
        replaces the model until two classes are labeled.
        """
        if not self.strategy.needs_model or _labeled_class_count(store) >= 2:
            return self.strategy
        logger.warning(
            "round %d: %s needs a model, and fewer than two classes are labeled; "
            "querying with %s (%s) instead",
            round_index, self.strategy.name, self.cold_start_strategy.name, self.cold_start_strategy.description,
        )
        return self.cold_start_strategy

    def _hold_back_outliers(self, data, split, pool, excluded, round_index):
        """Return the pool rows the outlier guard holds back this round, or None when it is off."""
        settings = self.config.monitoring.outliers
        if not settings.enabled:
            return None
        from al_ray.monitoring.outliers import hold_back_for_round

        held_back = hold_back_for_round(
            settings, data, split.pool, pool.iter_local_batches(self.config.scoring.batch_rows), excluded,
            derive_seed(self.config.seed, "outliers", round_index), round_index,
        )
        if held_back is not None:
            self._monitor.metrics.outliers_held_back(int(held_back.row_ids.size), held_back.n_candidates)
        return held_back

    def _selection_context(self, strategy, store, data, pool, round_index) -> SelectionContext:
        """Build the extra inputs that the strategy's selector declares in ``context_needs``."""
        needs = strategy.context_needs
        labeled_features = None
        pool_sample = None
        if "labeled_features" in needs:
            labeled = np.fromiter(sorted(store.labels()), dtype=np.int64)
            labeled_features = data.subset(labeled).features
        if "pool_sample" in needs:
            pool_sample = pool.sample(POOL_SAMPLE_ROWS, derive_seed(self.config.seed, "pool-sample", round_index))
        return SelectionContext(labeled_features=labeled_features, pool_sample=pool_sample)

    def _collect(self, store: LabelStore, source: LabelSource) -> None:
        """Request every pending task and store the answers that arrive in time."""
        pending = store.tasks(status="pending")
        if not pending:
            return
        self._monitor.pending_tasks(len(pending))
        started = time.perf_counter()
        source.request(pending)
        # The round trains once this many tasks are answered, or at the deadline.
        quota = self.config.labeling.quota
        needed = math.ceil(quota * len(pending) - 1e-9)
        deadline = time.monotonic() + self.config.loop.collect_timeout_s
        waiting = False
        while True:
            # The first collect only takes what is in, so that a wait gets its log line before it starts.
            timeout_s = max(0.0, deadline - time.monotonic()) if waiting else 0.0
            answers = source.collect(timeout_s=timeout_s)
            if answers:
                result = store.add_answers(answers)
                self._monitor.answers_stored(answers, result, tasks=pending)
                if result.conflicts:
                    logger.warning("rows with conflicting answers, left out of training: %s", result.conflicts)
            answered = len(pending) - len(store.tasks(status="pending"))
            if answered >= needed or time.monotonic() >= deadline:
                break
            if not waiting:
                waiting = True
                hint = source.waiting_hint()
                logger.warning(
                    "round %d: waiting for %d answers from %s (up to %.0f s)%s",
                    max(task.round_index for task in pending), needed - answered, source.name,
                    max(0.0, deadline - time.monotonic()), f"; {hint}" if hint else "",
                )
        left = len(store.tasks(status="pending"))
        self._monitor.pending_tasks(left)
        self._monitor.metrics.stage_seconds("labeling_wait", time.perf_counter() - started)
        if left:
            logger.warning(
                "%d of %d tasks are still unanswered when the round trains (labeling.quota %.2f, "
                "loop.collect_timeout_s %.0f); they count in a later round once answered",
                left, len(pending), quota, self.config.loop.collect_timeout_s,
            )

    def _train(self, store: LabelStore, data: LabeledData, trainer, round_index: int, previous=None):
        labels = store.labels()
        row_ids = np.fromiter(sorted(labels), dtype=np.int64, count=len(labels))
        class_index = {name: index for index, name in enumerate(data.classes)}
        targets = np.array([class_index[labels[row_id]] for row_id in row_ids.tolist()], dtype=np.int64)
        started = time.perf_counter()
        if np.unique(targets).size < 2:
            logger.info(
                "round %d: %d labels cover %d classes; the model is the label prior until two classes are labeled",
                round_index, targets.size, np.unique(targets).size,
            )
            return PriorClassifier(data.classes, targets), time.perf_counter() - started, None
        model = trainer.fit(data.subset(row_ids).features, targets, round_index, previous=previous)
        # Torch trainers keep a report of the fit; scikit-learn trainers have none.
        return model, time.perf_counter() - started, getattr(trainer, "last_report", None)

    def _complete_round(
        self, store, tracker, data, split, model, round_index, *,
        previous, n_queried, seconds, scoring, train_seconds, fit_report=None, outliers=None,
    ) -> None:
        """Evaluate the round's model, save it, mark the round completed and report it."""
        test = data.subset(split.test)
        predicted = model.predict(test.features)
        macro_f1 = f1_score(
            test.labels, predicted, average="macro", labels=np.arange(len(data.classes)), zero_division=0
        )
        strategy = self._queried_by(store, round_index, scoring)
        metrics = {
            "n_labeled": float(len(store.labels())),
            "n_queried": float(n_queried),
            "accuracy": float(accuracy_score(test.labels, predicted)),
            "macro_f1": float(macro_f1),
            "round_seconds": seconds,
            "train_seconds": train_seconds,
            # 1 when the round queried with the cold-start strategy in place of the configured one.
            "cold_start": 1.0 if strategy not in (None, self.strategy.name) else 0.0,
        }
        # A round resumed after its tasks were posted did not score in this
        # process, so its scoring metrics are left out rather than recorded as 0.
        if scoring is not None or round_index == 0:
            metrics.update({
                "scoring_seconds": scoring.seconds if scoring else 0.0,
                "scoring_rows_per_s": scoring.rows_per_s if scoring else 0.0,
                "scoring_rows": float(scoring.rows_scored) if scoring else 0.0,
                # 1 when the round scored on the Ray Data actor pool, 0 in-process.
                "scoring_on_ray": 1.0 if scoring is not None and scoring.path == "ray" else 0.0,
            })
        if fit_report is not None:
            # Torch rounds: start-up (Ray Train's worker group, data transfer) and training proper.
            metrics["train_epochs"] = float(fit_report.epochs_run)
            metrics["train_loop_seconds"] = fit_report.train_seconds
            metrics["train_startup_seconds"] = max(0.0, fit_report.seconds - fit_report.train_seconds)
            metrics["train_resumed_from_epoch"] = float(fit_report.resumed_from_epoch)
        kappa = self._stop_set_kappa(previous, model)
        if kappa is not None:
            metrics["stop_set_kappa"] = kappa
        if outliers is not None:
            metrics.update(outliers.metrics())
        # Agreement and accuracy of human annotators; the oracle reports none.
        metrics.update(self._source_metrics())

        path = self._model_path(round_index)
        save_model(model, path)
        if self._registry is not None:
            # Registered before the round is completed: a kill in between
            # registers again on resume, which returns the same version. The
            # registry logs the metrics into the run, linked to the version.
            version = self._register(store, tracker, data, round_index, path, metrics, strategy)
            if self._deployer is not None:
                self._ray_session.ensure()
                with self._monitor.stage("deployment"):
                    rollout = self._deployer.deploy_round(round_index, version)
                metrics.update(rollout)
                if rollout:
                    tracker.log_round(round_index, rollout)
        elif tracker is not None:
            tracker.log_round(round_index, metrics)
        store.complete_round(round_index, metrics, model_path=str(path))
        self._write_outputs(store)
        self._monitor.round_completed(round_index, store.round_records())

        stored = next(row for row in store.round_records() if row["round_index"] == round_index)
        record = self._record_from_store(stored)
        logger.info(
            "round=%d n_labeled=%d accuracy=%.4f macro_f1=%.4f seconds=%.2f scoring_path=%s rows_per_s=%.0f",
            record.round_index, record.n_labeled, record.accuracy, record.macro_f1,
            record.seconds, record.scoring_path, record.scoring_rows_per_s,
        )
        self.on_round(record)

    # Bookkeeping.

    def _check_output(self, resume: bool, store_location) -> None:
        """Reject a fresh run into a used store, and a resume with no store to continue."""
        if str(store_location).startswith(("sqlite:", "postgresql")):
            # NOTE: a store given as a URL is not checked here; the config
            # fingerprint check still rejects resuming a different run.
            return
        existing = Path(store_location).exists()
        if resume and not existing:
            raise ResumeError(
                f"nothing to resume: no label store at {Path(store_location).resolve()}; "
                + (
                    submitted_job_fix("missing")
                    or "run without --resume to start, or pass the --output of the run to continue"
                )
            )
        if not resume and existing:
            raise ResumeError(
                f"{Path(store_location).resolve()} already contains a run; "
                + (submitted_job_fix("used") or "pass --resume to continue it, or choose another --output folder")
            )

    def _check_fingerprint(self, store: LabelStore, resume: bool) -> None:
        current = config_fingerprint(self.config)
        stored = store.get_meta("config_fingerprint")
        if stored is None:
            store.set_meta("config_fingerprint", current)
        elif stored != current:
            raise ResumeError(
                f"the config differs from the run being resumed in {describe_difference(stored, current)}; "
                + (
                    submitted_job_fix("changed")
                    or "resume with the original settings, or start a new run in another --output folder"
                )
            )

    def _open_tracker(self, store: LabelStore):
        tracking = self.config.tracking
        if not tracking.enabled:
            return None
        from al_ray.tracking import MlflowTracker

        self.tracking_root.mkdir(parents=True, exist_ok=True)
        uri = self._tracking_uri()
        tracker = MlflowTracker(
            uri,
            tracking.experiment or f"al_ray-{self.config.name}",
            artifact_location=(self.tracking_root / "mlartifacts").resolve().as_uri(),
        )
        params = {key: value for key, value in _flatten(self.config.model_dump(mode="json")).items()}
        run_id = tracker.start(f"{self.config.name}-{self.config.strategy.name}", params, store.get_meta("mlflow_run_id"))
        store.set_meta("mlflow_run_id", run_id)
        return tracker

    def _tracking_uri(self) -> str:
        return self.config.tracking.uri or f"sqlite:///{(self.tracking_root / 'mlflow.db').resolve()}"

    def _open_registry(self, tracker):
        if tracker is None or not self.config.tracking.register_models:
            return None
        from al_ray.tracking.registry import ModelRegistry

        return ModelRegistry(tracker.tracking_uri)

    def _open_deployer(self):
        if not self.config.serving.deploy_each_round:
            return None
        from al_ray.loop.rollout import RoundDeployer

        return RoundDeployer(
            self.config, self._registry, self._registered_name(), self.output_dir / "rollout.jsonl",
            monitor=self._monitor,
        )

    def _registered_name(self) -> str:
        return self.config.tracking.registered_model or f"{self.config.name}-{self.config.strategy.name}"

    def _register(self, store, tracker, data, round_index, path, metrics, strategy) -> str:
        """Register the round's model as a version with its lineage and make it the challenger."""
        from al_ray.tracking.registry import labeled_hash

        name = self._registered_name()
        parent = (store.get_meta(_version_key(round_index - 1)) or "") if round_index > 0 else ""
        lineage = {
            "n_labeled": str(int(metrics["n_labeled"])),
            "labeled_hash": labeled_hash(sorted(store.labels())),
            "strategy": strategy or "initial labeled set",
            "seed": str(self.config.seed),
            "parent_version": parent,
        }
        version = self._registry.register_round(
            tracker.run_id,
            path,
            name=name,
            round_index=round_index,
            lineage=lineage,
            metrics=metrics,
            classes=list(data.classes),
            extra_pip_requirements=["torch==2.13.0"] if self.config.model.kind == "torch" else (),
        )
        store.set_meta(_version_key(round_index), version)
        self._monitor.model_registered(
            name, version, round_index=round_index, lineage=lineage, metrics=metrics, run_id=tracker.run_id
        )
        # The newest model is the challenger. The first becomes the champion; later
        # promotions are the canary rollout's decision, not the loop's.
        self._registry.set_alias(name, "challenger", version)
        if round_index == 0:
            self._registry.set_alias(name, "champion", version)
        logger.info("round %d: registered %s version %s", round_index, name, version)
        return version

    def _finish_tracking(self, tracker, model, data, status, rounds) -> None:
        tracker.set_tags({"al_ray.status": status, "al_ray.rounds": str(len(rounds) - 1)})
        for name in ("learning_curve.csv", "queries.csv", "learning_curve.png"):
            path = self.output_dir / name
            if path.exists():
                tracker.log_artifact(path)
        if self.config.tracking.log_model:
            tracker.log_sklearn_models(model.fitted_estimators(), list(data.classes))
        tracker.finish("FINISHED")

    def _write_outputs(self, store: LabelStore) -> None:
        rows = [self._record_from_store(row) for row in store.round_records() if row["status"] == "completed"]
        write_csv_atomic(
            self.output_dir / "learning_curve.csv",
            CURVE_COLUMNS,
            [(r.round_index, r.n_labeled, f"{r.accuracy:.6f}", f"{r.macro_f1:.6f}", f"{r.seconds:.3f}") for r in rows],
        )
        write_csv_atomic(
            self.output_dir / "queries.csv",
            ("round", "row_id", "utility", "model_version"),
            [
                (
                    task.round_index,
                    task.row_id,
                    "" if task.utility is None else f"{task.utility:.8g}",
                    task.model_version or "",
                )
                for task in store.tasks()
                if task.round_index >= 1
            ],
        )
        if rows:
            write_learning_curve_plot(
                self.output_dir / "learning_curve.png",
                {self.config.strategy.name: [{"n_labeled": r.n_labeled, "accuracy": r.accuracy, "macro_f1": r.macro_f1} for r in rows]},
                f"{self.config.name}: {self.config.strategy.name}",
            )

    def _record_from_store(self, row: dict) -> RoundRecord:
        metrics = row["metrics"] or {}
        return RoundRecord(
            round_index=row["round_index"],
            n_labeled=int(metrics.get("n_labeled", 0)),
            n_queried=int(metrics.get("n_queried", 0)),
            accuracy=float(metrics.get("accuracy", float("nan"))),
            macro_f1=float(metrics.get("macro_f1", float("nan"))),
            seconds=float(metrics.get("round_seconds", 0.0)),
            scoring_path=_scoring_path(row["round_index"], metrics),
            scoring_rows_per_s=float(metrics.get("scoring_rows_per_s", 0.0)),
        )

    def _queried_by(self, store: LabelStore, round_index: int, scoring) -> str | None:
        """Return the name of the strategy that selected the round's rows; None for round 0."""
        if round_index == 0:
            return None
        if scoring is not None:
            return scoring.strategy
        # A resumed round; stores written before the strategy was stored fall back to the configured one.
        return store.get_meta(_strategy_key(round_index)) or self.strategy.name

    def _model_path(self, round_index: int) -> Path:
        return self.output_dir / "models" / f"round_{round_index:04d}.pkl"

    def _model_version(self, store: LabelStore, round_index: int) -> str:
        """Return the registry address of the round's model, or its file name when nothing is registered."""
        version = store.get_meta(_version_key(round_index))
        if version is not None:
            return f"models:/{self._registered_name()}/{version}"
        return f"{self.config.name}/{self.config.strategy.name}/round_{round_index:04d}"


class _LazyRay:
    """Start Ray on first need, so runs that only score in-process never pay for it."""

    def __init__(self, stack: contextlib.ExitStack, config: RunConfig) -> None:
        self._stack = stack
        self._config = config

    def ensure(self) -> None:
        import ray

        if not ray.is_initialized():
            self._stack.enter_context(ray_session(self._config.ray))


def _oracle_source(config: RunConfig, store: LabelStore, data: LabeledData) -> LabelSource:
    return SimulatedOracle(dict(zip(data.row_ids.tolist(), data.label_names(data.row_ids))))


def _human_source(config: RunConfig, store: LabelStore, data: LabeledData) -> LabelSource:
    from al_ray.labeling.queue import LabelQueue
    from al_ray.labeling.source import HumanLabelSource

    return HumanLabelSource(LabelQueue.for_run(store, data.classes, config))


# Builders of the label source named by labels.source.
_LABEL_SOURCES: dict[str, Callable[[RunConfig, LabelStore, LabeledData], LabelSource]] = {
    "oracle": _oracle_source,
    "human": _human_source,
}


def _version_key(round_index: int) -> str:
    return f"model_version.round_{round_index:04d}"


def _strategy_key(round_index: int) -> str:
    return f"strategy.round_{round_index:04d}"


def _labeled_class_count(store: LabelStore) -> int:
    return len(set(store.labels().values()))


def _scoring_path(round_index: int, metrics: dict) -> str:
    if round_index == 0 or "scoring_rows" not in metrics:
        return "-"
    return "ray" if metrics.get("scoring_on_ray") else "local"


def _flatten(raw: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
