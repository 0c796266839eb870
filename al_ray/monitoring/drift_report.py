"""A drift check as a self-contained HTML page, and logging that page to MLflow.

The page contains the decision and its figures and a table of every
feature's test. PNG plots are embedded as data URIs, so the single file opens
anywhere. They show the adjusted p-values and PSI of all features, and the
reference and window shares of the most drifted ones.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from al_ray.errors import TrackingError
from al_ray.monitoring.drift_result import DriftResult, FeatureDrift
from al_ray.monitoring.triggers import Decision

__all__ = ["log_report_to_mlflow", "render_report", "write_report"]

logger = logging.getLogger(__name__)

# Smallest p-value drawn, so that a p-value of 0 still has a finite bar.
_P_FLOOR = 1e-300


def _png(figure) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _overview_png(result: DriftResult) -> str:
    from matplotlib.figure import Figure

    features = list(result.features)
    names = [feature.name for feature in features]
    height = max(2.5, 0.35 * len(names) + 1.2)
    figure = Figure(figsize=(10, height), layout="constrained")
    p_axis, psi_axis = figure.subplots(1, 2, sharey=True)
    colours = ["tab:red" if feature.drifted else "tab:blue" for feature in features]

    log_p = [
        -math.log10(max(feature.p_value_adjusted, _P_FLOOR)) if feature.p_value_adjusted is not None else 0.0
        for feature in features
    ]
    p_axis.barh(names, log_p, color=colours)
    p_axis.axvline(-math.log10(result.alpha), color="black", linestyle="--", linewidth=1)
    p_axis.set_xlabel(f"-log10 adjusted p ({result.correction}); dashed: alpha {result.alpha:g}")
    p_axis.invert_yaxis()

    psi_axis.barh(names, [feature.psi for feature in features], color=colours)
    psi_axis.set_xlabel("population stability index")
    figure.suptitle("feature drift (red: drifted)")
    return _png(figure)


def _shares_png(features: list[FeatureDrift]) -> str:
    from matplotlib.figure import Figure

    columns = min(3, len(features))
    rows = math.ceil(len(features) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.2 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis, feature in zip(axes.flat, features):
        positions = range(len(feature.bin_labels))
        axis.bar([p - 0.2 for p in positions], feature.reference_shares, width=0.4, label="reference")
        axis.bar([p + 0.2 for p in positions], feature.window_shares, width=0.4, label="window")
        axis.set_xticks(list(positions))
        axis.set_xticklabels(feature.bin_labels, rotation=60, ha="right", fontsize=7)
        axis.set_title(f"{feature.name} ({feature.test})", fontsize=10)
        axis.set_ylabel("share of rows")
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(features):]:
        axis.set_visible(False)
    return _png(figure)


def _format(value: float | None, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def _feature_rows(result: DriftResult) -> str:
    rows = []
    for feature in result.ranked_features():
        rows.append(
            "<tr{cls}><td>{name}</td><td>{kind}</td><td>{test}</td><td>{stat}</td><td>{p}</td>"
            "<td>{p_adj}</td><td>{psi}</td><td>{drifted}</td></tr>".format(
                cls=' class="drifted"' if feature.drifted else "",
                name=html.escape(feature.name) + (" (constant in reference)" if feature.constant_reference else ""),
                kind=feature.kind,
                test=feature.test,
                stat=_format(feature.statistic),
                p=_format(feature.p_value, ".3g"),
                p_adj=_format(feature.p_value_adjusted, ".3g"),
                psi=_format(feature.psi, ".3f"),
                drifted="yes" if feature.drifted else "no",
            )
        )
    return "\n".join(rows)


def _model_section(result: DriftResult) -> str:
    parts = []
    prediction = result.prediction_drift
    if prediction is not None:
        shares = ", ".join(
            f"{html.escape(name)}: {reference:.3f} &rarr; {window:.3f}"
            for name, reference, window in zip(prediction.classes, prediction.reference_shares, prediction.window_shares)
        )
        parts.append(
            f"<h2>Prediction drift</h2><p>chi-squared {prediction.statistic:.4g}, p-value {prediction.p_value:.3g}, "
            f"drifted: {'yes' if prediction.drifted else 'no'}.</p><p>Predicted class shares, reference &rarr; "
            f"window: {shares}</p>"
        )
    uncertainty = result.uncertainty_drift
    if uncertainty is not None:
        reference = uncertainty.reference_quantiles or {}
        cells = "".join(
            f"<tr><td>q{quantile:g}</td><td>{value:.4f}</td><td>{_format(reference.get(quantile), '.4f')}</td></tr>"
            for quantile, value in uncertainty.quantiles.items()
        )
        parts.append(
            "<h2>Uncertainty</h2><table><tr><th>figure</th><th>window</th><th>reference</th></tr>"
            f"<tr><td>mean</td><td>{uncertainty.mean:.4f}</td><td>{_format(uncertainty.reference_mean, '.4f')}</td></tr>"
            f"{cells}</table>"
        )
    return "\n".join(parts)


_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1100px}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}tr.drifted{background:#fde2e2}"
    "img{max-width:100%}"
)


def _decisions_section(decisions: Sequence[Decision]) -> str:
    """Return the trigger policies' decisions on the window, with the thresholds they compared against."""
    if not decisions:
        return ""
    items = "".join(
        f"<li><b>{html.escape(decision.policy)}</b>: {'fired' if decision.fired else 'did not fire'} "
        f"({html.escape(decision.reason)})</li>"
        for decision in decisions
    )
    return (
        "<h2>Trigger policies</h2><p>These thresholds (monitoring.triggers) decide whether a round starts; "
        f"the drift check's own flag above does not.</p><ul>{items}</ul>"
    )


def render_report(
    result: DriftResult, *, title: str = "Drift report", top: int = 6, decisions: Sequence[Decision] = ()
) -> str:
    """Return the HTML text of the report for ``result``, with ``top`` features' shares plotted.

    ``decisions`` are the trigger policies' decisions on the same window, listed with their thresholds.
    """
    ranked = result.ranked_features()
    shown = [feature for feature in ranked if feature.bin_labels][: max(0, top)]
    verdict = "DRIFTED" if result.drifted else "no drift"
    excluded = ", ".join(html.escape(name) for name in result.excluded_features) or "none"
    summary = (
        f"<p><b>{verdict}</b>: {len(result.drifted_features)} of {len(result.features)} tested features drifted "
        f"(share {result.drift_share:.3f}; the check flags the window at a share of at least "
        f"{result.min_drifted_share:g}, monitoring.drift.min_drifted_share, with at least one feature drifted); "
        f"score (largest PSI over the tested features) {result.score:.3f}.</p>"
        f"<p>Window rows: {result.n_window} (dropped for NaN: {result.rows_dropped}); "
        f"reference rows: {result.n_reference}; correction: {html.escape(result.correction)} at alpha "
        f"{result.alpha:g}; not tested: {excluded}.</p>"
    )
    images = [f'<img alt="feature drift overview" src="data:image/png;base64,{_overview_png(result)}">']
    if shown:
        images.append(
            f'<h2>Most drifted features</h2><img alt="reference and window shares" '
            f'src="data:image/png;base64,{_shares_png(shown)}">'
        )
    heading = html.escape(title) + (f": {html.escape(result.label)}" if result.label else "")
    return (
        f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{heading}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{heading}</h1>{summary}{''.join(images)}"
        "<h2>Feature tests</h2><table><tr><th>feature</th><th>kind</th><th>test</th><th>statistic</th>"
        "<th>p-value</th><th>adjusted p</th><th>PSI</th><th>drifted</th></tr>"
        f"{_feature_rows(result)}</table>{_model_section(result)}{_decisions_section(decisions)}</body></html>\n"
    )


def write_report(
    result: DriftResult,
    path: str | Path,
    *,
    title: str = "Drift report",
    top: int = 6,
    decisions: Sequence[Decision] = (),
) -> Path:
    """Write the HTML report of ``result`` (and the trigger ``decisions`` on its window) to ``path``; return the path.

    The file is written to a temporary name in the same folder and renamed,
    so a reader sees the previous report or the new one, never half of one.
    """
    target = Path(path)
    text = render_report(result, title=title, top=top, decisions=decisions)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        # mkstemp creates the file readable by its owner only, but reports are shared files.
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    logger.info("wrote drift report %s (%s)", target, result.summary())
    return target


def log_report_to_mlflow(
    path: str | Path,
    *,
    run_id: str | None = None,
    tracking_uri: str | None = None,
    artifact_path: str = "drift_reports",
) -> str:
    """Log a report file as an MLflow artifact; return the artifact's path in the run.

    With ``run_id`` the file goes to that run (on ``tracking_uri``, or
    MLflow's current URI). Without it, it goes to the active run of this
    process.

    Raises:
        TrackingError: If no run is given and none is active, the file is
            missing, or MLflow fails to store it.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    source = Path(path)
    if not source.is_file():
        raise TrackingError(f"drift report {source} does not exist; write it with write_report first.")
    try:
        if run_id is not None:
            MlflowClient(tracking_uri=tracking_uri).log_artifact(run_id, str(source), artifact_path)
        else:
            if mlflow.active_run() is None:
                raise TrackingError(
                    "no active MLflow run to log the drift report to; call inside mlflow.start_run(), "
                    "or pass run_id."
                )
            mlflow.log_artifact(str(source), artifact_path)
    except TrackingError:
        raise
    except Exception as exc:  # MLflow raises many types for an unreachable or read-only store.
        raise TrackingError(f"failed to log drift report {source} to MLflow: {exc}") from exc
    return f"{artifact_path}/{source.name}"
