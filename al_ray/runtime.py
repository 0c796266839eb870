"""Starting and reaching Ray with settings that do not hang on small machines."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from al_ray.config import RayConfig

__all__ = ["RAY_ENV_VARS", "Terminated", "raise_on_sigterm", "ray_session"]

logger = logging.getLogger(__name__)

# Set by Ray's job supervisor in the environment of every job entrypoint
# (ray._private.runtime_env.constants.RAY_JOB_CONFIG_JSON_ENV_VAR).
_JOB_ENV_VAR = "RAY_JOB_CONFIG_JSON_ENV_VAR"

RAY_ENV_VARS = {
    # Ray Train's controller polls its workers every 2 s by default, and each
    # ray.train.report waits for a poll: 1.6-1.8 s per epoch on a 2-core
    # machine, where a small model trains an epoch in 0.05 s. At 0.2 s, ten
    # reports took 12 s instead of 31 s (including the worker group's start-up).
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2",
}


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so a run stops the way Ctrl-C stops it.

    A subclass of KeyboardInterrupt, so every ``except KeyboardInterrupt``
    that already stops cleanly also handles a ``kill`` or a ``ray job stop``.
    """


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(f"received signal {signal.Signals(signum).name}")


def raise_on_sigterm() -> object:
    """Make SIGTERM raise :class:`Terminated` in the main thread; return the handler it replaces.

    Off the main thread, where Python cannot set signal handlers, change
    nothing and return None.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


def _quiet_ray_data() -> None:
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    # Ray Data logs every dataset execution at INFO; one per round is noise here.
    logging.getLogger("ray.data").setLevel(logging.WARNING)


@contextmanager
def ray_session(config: RayConfig) -> Iterator[None]:
    """Connect to Ray for the duration of the block; start a local Ray if none is given.

    Reuses a session that is already initialised in this process (a test
    fixture's, or the caller's) and leaves it running. A session this function
    starts is shut down on exit.
    """
    import ray

    if ray.is_initialized():
        _quiet_ray_data()
        yield
        return

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs: dict[str, object] = {
        "include_dashboard": False,
        "logging_level": logging.WARNING,
        "log_to_driver": False,
        "runtime_env": {"env_vars": dict(RAY_ENV_VARS)},
    }
    if config.address is None and _JOB_ENV_VAR in os.environ:
        # Ray's job supervisor sets this for a job's entrypoint: a loop started as
        # a Ray job (al-ray submit, a RayJob) joins the cluster it runs on.
        kwargs["address"] = "auto"
    elif config.address is None:
        # "local" never attaches to a cluster left running by `ray start`.
        kwargs["address"] = "local"
        # Scoring actors hold fractional CPUs, so the default logical CPU count is
        # enough; a larger count is allowed for machines where Ray undercounts.
        if config.num_cpus is not None:
            kwargs["num_cpus"] = config.num_cpus
        if config.object_store_memory_mb is not None:
            kwargs["object_store_memory"] = config.object_store_memory_mb * 1024 * 1024
    else:
        kwargs["address"] = config.address
    logger.info("starting Ray (address=%s)", kwargs["address"])
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous_handler = signal.getsignal(signal.SIGTERM) if on_main_thread else None
    ray.init(**kwargs)
    # ray.init replaces the SIGTERM handler, and Ray's core worker then prints
    # a native stack dump on SIGTERM. Raising Terminated instead runs every
    # cleanup on the way out: the run lock, the label store, ray.shutdown.
    raise_on_sigterm()
    _quiet_ray_data()
    try:
        yield
    finally:
        ray.shutdown()
        if on_main_thread and previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
        logger.info("Ray shut down")
