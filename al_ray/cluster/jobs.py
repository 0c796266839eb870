"""Status, logs and stop of a Ray job, through the dashboard's Jobs REST API with a timeout on every request.

Ray's ``JobSubmissionClient`` sends its requests without a timeout, so a
cluster that stops responding mid-way would hang the command. These calls
use the documented REST paths (``/api/jobs/{id}``, ``/api/jobs/{id}/logs``,
``/api/jobs/{id}/stop``) with the same token header instead. Only the
submission itself, which uploads the working_dir, goes through the SDK.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from al_ray.cluster.address import Dashboard, redact
from al_ray.errors import ClusterError

__all__ = ["EXIT_CODES", "LOG_TAIL_LINES", "JobOutcome", "JobsApi"]

logger = logging.getLogger(__name__)

TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
# Exit status of `al-ray submit --follow` and `al-ray jobs logs --follow` per
# end state; 2 stays the CLI's status for a user error.
EXIT_CODES = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 3}
LOG_TAIL_LINES = 20
# Ray colours the names of tasks in tracebacks; the colour codes are noise in a summary.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class JobOutcome:
    """A job's state when it was last asked: its status, Ray's message and, once failed, its last log lines."""

    submission_id: str
    address: str
    status: str  # PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED, as Ray names them
    message: str = ""
    log_tail: tuple[str, ...] = ()

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    @property
    def summary(self) -> str:
        """The first line of Ray's message; for a failed job Ray appends the whole log after it."""
        first = self.message.splitlines()[0] if self.message else ""
        return first.split(", last available logs")[0]

    @property
    def exit_code(self) -> int:
        """0 succeeded, 1 failed, 3 stopped; 0 for a job that has not ended (nothing went wrong yet)."""
        return EXIT_CODES.get(self.status, 0)


class JobsApi:
    """The Jobs REST API of one dashboard; every request is bounded by ``timeout_s``."""

    def __init__(self, dashboard: Dashboard, *, timeout_s: float) -> None:
        self.dashboard = dashboard
        self.timeout_s = timeout_s

    @property
    def address(self) -> str:
        return self.dashboard.address

    def _request(self, method: str, path: str, submission_id: str) -> dict:
        url = f"{self.address}/api/jobs/{urllib.parse.quote(submission_id, safe='')}{path}"
        request = urllib.request.Request(url, method=method, headers=self.dashboard.headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise self._http_error(error, submission_id) from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = redact(str(getattr(error, "reason", error)), self.dashboard.token)
            raise ClusterError(
                f"the Ray dashboard at {self.address} did not respond about job {submission_id!r} "
                f"within {self.timeout_s:g} s ({reason}); check the cluster with `ray status` on the head node"
            ) from None

    def _http_error(self, error: urllib.error.HTTPError, submission_id: str) -> ClusterError:
        if error.code == 404:
            return ClusterError(
                f"no job {submission_id!r} on the Ray cluster at {self.address}; "
                f"`ray job list --address {self.address}` lists the jobs it knows"
            )
        if error.code in (401, 403):
            return ClusterError(
                f"the Ray cluster at {self.address} rejected the request (HTTP {error.code}); "
                "export RAY_AUTH_TOKEN with the cluster's token"
            )
        body = redact(error.read().decode("utf-8", "replace")[:500], self.dashboard.token)
        return ClusterError(f"the Ray dashboard at {self.address} responded HTTP {error.code} about job {submission_id!r}: {body}")

    def outcome(self, submission_id: str, *, with_tail: bool = True) -> JobOutcome:
        """Return the job's current status and message, with its last log lines once it has failed."""
        info = self._request("GET", "", submission_id)
        status = str(info.get("status", "UNKNOWN"))
        tail: tuple[str, ...] = ()
        if with_tail and status == "FAILED":
            lines = _ANSI_ESCAPE.sub("", self.logs(submission_id)).splitlines()
            tail = tuple(lines[-LOG_TAIL_LINES:])
        return JobOutcome(
            submission_id=submission_id,
            address=self.address,
            status=status,
            message=str(info.get("message") or ""),
            log_tail=tail,
        )

    def logs(self, submission_id: str) -> str:
        """Return everything the job's driver has printed so far."""
        return str(self._request("GET", "/logs", submission_id).get("logs", ""))

    def stop(self, submission_id: str) -> bool:
        """Ask Ray to stop the job; return whether it was still running."""
        stopped = bool(self._request("POST", "/stop", submission_id).get("stopped", False))
        logger.info("stop of job %s requested on %s: %s", submission_id, self.address, stopped)
        return stopped

    def follow(
        self,
        submission_id: str,
        *,
        on_log: Callable[[str], None] | None = None,
        timeout_s: float | None = None,
        poll_interval_s: float = 1.0,
    ) -> JobOutcome:
        """Wait for the job to end, passing each new piece of its log to ``on_log``.

        Raises
        ------
        ClusterError
            When the job has not ended after ``timeout_s``; the job keeps running.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        printed = 0
        while True:
            outcome = self.outcome(submission_id, with_tail=False)
            if on_log is not None:
                # Logs are read after the status, so a terminal status means they are complete.
                text = self.logs(submission_id)
                if len(text) > printed:
                    on_log(text[printed:])
                    printed = len(text)
            if outcome.is_terminal:
                return self.outcome(submission_id) if outcome.status == "FAILED" else outcome
            if deadline is not None and time.monotonic() >= deadline:
                raise ClusterError(
                    f"job {submission_id!r} is still {outcome.status} after {timeout_s:g} s and keeps running; "
                    f"follow it with `al-ray jobs logs {submission_id} --follow --address {self.address}` "
                    f"or stop it with `al-ray jobs stop {submission_id} --address {self.address}`"
                )
            time.sleep(poll_interval_s)
