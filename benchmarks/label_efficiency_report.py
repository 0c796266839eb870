"""Summaries, tables and plots of the label-efficiency benchmark.

Input is one row per run (dataset, library, strategy, seed) as
:mod:`benchmarks.label_efficiency` writes them to its CSV. Output is the
summary rows, the markdown section of ``RESULTS.md`` and one PNG of
learning curves per dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks._report import save_figure
from benchmarks.label_efficiency_runners import (
    LIBRARY_TITLES,
    PEER_EQUIVALENTS,
    STRATEGIES,
    DatasetSetup,
    is_committee_strategy,
)

__all__ = [
    "FULL_POOL_FRACTION",
    "SUMMARY_COLUMNS",
    "TARGET_FRACTIONS",
    "PeerComparison",
    "area_under_curve",
    "compare_peers",
    "headline_rows",
    "labels_to_reach",
    "plot_dataset",
    "render_markdown",
    "summarize",
]

FULL_POOL_FRACTION = 0.95
"""The label target is this fraction of the full-pool accuracy."""

TARGET_FRACTIONS = {"mnist_test": 0.40, "letter_recognition": 0.50}
"""Targets for the labels al_ray's best strategy needs to reach random's final accuracy, as a share of random's."""

SUMMARY_COLUMNS: tuple[str, ...] = (
    "dataset", "library", "strategy", "status", "seeds", "final_labels",
    "final_accuracy_mean", "final_accuracy_std", "final_macro_f1_mean", "final_macro_f1_std",
    "aulc_mean", "aulc_std",
    "full_pool_accuracy_mean", "target_accuracy_mean", "seeds_reaching_target",
    "labels_to_target_mean", "labels_to_target_std",
    "random_final_accuracy_mean", "labels_to_random_final", "fraction_of_random_labels",
    "seconds_mean", "labels", "accuracy_mean", "accuracy_std",
)  # fmt: skip
"""Columns of the summary CSV, one row per dataset, library and strategy.

``labels_to_random_final`` and ``fraction_of_random_labels`` come from the
mean curve over seeds against the mean of al_ray random's final accuracies.
"""


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


def floats(text: object) -> np.ndarray:
    """Parse a ``;``-separated curve cell."""
    return np.array([float(part) for part in str(text).split(";")])


def join(values: np.ndarray) -> str:
    """Format a curve as a ``;``-separated cell."""
    return ";".join(f"{value:.6g}" for value in values)


def cell(value: float | None, digits: int = 6) -> str | float | int:
    """Return a CSV cell: empty for None, a rounded float, or the int itself."""
    if value is None:
        return ""
    return round(value, digits) if isinstance(value, float) else value


def _std(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if values.size > 1 else 0.0


def _group(rows: Sequence[dict[str, object]]) -> dict[tuple[str, str, str], list[dict[str, object]]]:
    groups: dict[tuple[str, str, str], list[dict[str, object]]] = {}
    for row in rows:
        groups.setdefault((str(row["dataset"]), str(row["library"]), str(row["strategy"])), []).append(row)
    return groups


def _status(members: Sequence[dict[str, object]], done: int) -> str:
    """Summarize the runs' statuses: "ok", "ok on k/m" with the failures, or why none ran.

    Seeds skipped to save time do not count in ``m``; a strategy the library
    lacks reads "not in <library>" alone.
    """
    statuses = [str(m["status"]) for m in members]
    missing = sorted({status for status in statuses if status.startswith("not in")})
    if missing:
        return "; ".join(missing)
    attempted = [status for status in statuses if not status.startswith("skipped")]
    failures = sorted({status for status in attempted if status != "ok"})
    if not attempted:
        return "; ".join(sorted(set(statuses)))
    if not failures:
        return "ok"
    return f"ok on {done}/{len(attempted)}; " + "; ".join(failures)


def summarize(rows: Sequence[dict[str, object]]) -> list[dict[str, object]]:
    """Aggregate per-run rows into mean and std over seeds, one row per dataset, library and strategy."""
    groups = _group(rows)
    random_final: dict[str, float] = {}
    for (dataset, library, strategy), members in groups.items():
        # The last point of each curve, so that random's own mean curve reaches this mean exactly.
        finals = [floats(m["accuracies"])[-1] for m in members if m["status"] == "ok"]
        if library == "al_ray" and strategy == "random" and finals:
            random_final[dataset] = float(np.mean(finals))

    summary = []
    for (dataset, library, strategy), members in groups.items():
        row: dict[str, object] = {column: "" for column in SUMMARY_COLUMNS}
        done = [m for m in members if m["status"] == "ok"]
        row.update(dataset=dataset, library=library, strategy=strategy, seeds=len(members))
        row["status"] = _status(members, len(done))
        if done:
            row.update(_curve_statistics(done))
            if dataset in random_final:
                labels = floats(row["labels"])
                # The mean curve is stored with 6 significant digits, so the tolerance absorbs
                # that rounding. It is far below one test row in ten seeds (2.5e-5 at 4,000 rows).
                needed = labels_to_reach(labels, floats(row["accuracy_mean"]), random_final[dataset] - 1e-6)
                row.update(
                    random_final_accuracy_mean=round(random_final[dataset], 4),
                    labels_to_random_final=cell(needed),
                    fraction_of_random_labels=cell(None if needed is None else needed / float(labels[-1]), 3),
                )
        summary.append(row)
    return summary


def _curve_statistics(done: Sequence[dict[str, object]]) -> dict[str, object]:
    curves = np.array([floats(m["accuracies"]) for m in done])
    labels = floats(done[0]["labels"]).astype(np.int64)
    finals = curves[:, -1]
    f1s = np.array([float(m["final_macro_f1"]) for m in done])
    aulcs = np.array([float(m["aulc"]) for m in done])
    reached = np.array([float(m["labels_to_target"]) for m in done if m["labels_to_target"] != ""])
    return {
        "seeds": len(done),
        "final_labels": int(labels[-1]),
        "final_accuracy_mean": round(float(finals.mean()), 4),
        "final_accuracy_std": round(_std(finals), 4),
        "final_macro_f1_mean": round(float(f1s.mean()), 4),
        "final_macro_f1_std": round(_std(f1s), 4),
        "aulc_mean": round(float(aulcs.mean()), 4),
        "aulc_std": round(_std(aulcs), 4),
        "full_pool_accuracy_mean": round(float(np.mean([float(m["full_pool_accuracy"]) for m in done])), 4),
        "target_accuracy_mean": round(float(np.mean([float(m["target_accuracy"]) for m in done])), 4),
        "seeds_reaching_target": int(reached.size),
        "labels_to_target_mean": round(float(reached.mean()), 1) if reached.size else "",
        "labels_to_target_std": round(_std(reached), 1) if reached.size > 1 else "",
        "seconds_mean": round(float(np.mean([float(m["seconds"]) for m in done])), 2),
        "labels": join(labels),
        "accuracy_mean": join(curves.mean(axis=0)),
        "accuracy_std": join(curves.std(axis=0, ddof=1) if len(done) > 1 else np.zeros(labels.size)),
    }


@dataclass(frozen=True)
class PeerComparison:
    """A peer against al_ray on one dataset and strategy, paired by seed."""

    dataset: str
    strategy: str
    peer: str
    seeds: int
    """Seeds on which both finished."""
    final_difference: float
    """Mean over seeds of the peer's final accuracy minus al_ray's."""
    aulc_difference: float
    """Mean over seeds of the peer's AULC minus al_ray's."""
    final_spread: float
    """The larger of the two libraries' standard deviations of final accuracy over those seeds."""
    aulc_spread: float
    """The larger of the two libraries' standard deviations of AULC over those seeds."""
    identical: bool
    """True when the peer's curve equals al_ray's on every paired seed."""

    @property
    def verdict(self) -> str:
        """Return whether al_ray is worse, level or better beyond the seed spread."""
        if self.identical:
            return "identical curves"
        if self.seeds < 2:
            return "one seed: no spread to compare with"
        if self.final_difference > self.final_spread or self.aulc_difference > self.aulc_spread:
            return "al_ray worse beyond the spread"
        if self.final_difference < -self.final_spread or self.aulc_difference < -self.aulc_spread:
            return "al_ray better beyond the spread"
        return "within the spread"


def compare_peers(rows: Sequence[dict[str, object]]) -> list[PeerComparison]:
    """Pair each peer run with al_ray's run of the same dataset, strategy and seed."""
    runs = {
        (str(row["dataset"]), str(row["library"]), str(row["strategy"]), int(str(row["seed"]))): row
        for row in rows
        if row["status"] == "ok"
    }
    datasets = list(dict.fromkeys(str(row["dataset"]) for row in rows))
    comparisons = []
    for dataset in datasets:
        for strategy in STRATEGIES:
            for peer in ("modal", "skactiveml"):
                pairs = [
                    (runs[(dataset, "al_ray", strategy, seed)], peer_row)
                    for (d, library, s, seed), peer_row in runs.items()
                    if (d, library, s) == (dataset, peer, strategy)
                    and (dataset, "al_ray", strategy, seed) in runs
                ]
                if pairs:
                    comparisons.append(_paired(dataset, strategy, peer, pairs))
    return comparisons


def _paired(
    dataset: str, strategy: str, peer: str, pairs: list[tuple[dict[str, object], dict[str, object]]]
) -> PeerComparison:
    def metric(name: str, side: int) -> np.ndarray:
        return np.array([float(pair[side][name]) for pair in pairs])

    return PeerComparison(
        dataset=dataset,
        strategy=strategy,
        peer=peer,
        seeds=len(pairs),
        final_difference=float(np.mean(metric("final_accuracy", 1) - metric("final_accuracy", 0))),
        aulc_difference=float(np.mean(metric("aulc", 1) - metric("aulc", 0))),
        final_spread=max(_std(metric("final_accuracy", 0)), _std(metric("final_accuracy", 1))),
        aulc_spread=max(_std(metric("aulc", 0)), _std(metric("aulc", 1))),
        identical=all(ours["accuracies"] == theirs["accuracies"] for ours, theirs in pairs),
    )


def headline_rows(
    summary: Sequence[dict[str, object]], rows: Sequence[dict[str, object]]
) -> list[dict[str, object]]:
    """Return, per dataset, al_ray's strategy that reaches random's final accuracy with the fewest labels.

    The reading is on the mean curve over seeds against the mean of random's
    final accuracies; ties go to the higher AULC. ``per_seed_median`` is the
    median over seeds of the same share read on each seed's own curves, with
    seeds that never reach it left out and counted in ``seeds_reaching``.
    """
    result = []
    for dataset in dict.fromkeys(str(row["dataset"]) for row in summary):
        candidates = [
            row for row in summary
            if row["dataset"] == dataset and row["library"] == "al_ray" and row["strategy"] != "random"
            and row["fraction_of_random_labels"] != ""
        ]  # fmt: skip
        random_row = next(
            (
                row
                for row in summary
                if (row["dataset"], row["library"], row["strategy"]) == (dataset, "al_ray", "random")
            ),
            None,
        )
        entry: dict[str, object] = {"dataset": dataset, "target": TARGET_FRACTIONS.get(dataset), "best": None}
        if random_row is not None and random_row["labels"] != "":
            entry["random_labels"] = int(str(random_row["final_labels"]))
            entry["random_final_accuracy"] = float(str(random_row["final_accuracy_mean"]))
        if candidates:
            best = min(
                candidates,
                key=lambda row: (float(str(row["fraction_of_random_labels"])), -float(str(row["aulc_mean"]))),
            )
            shares = [
                float(str(run["fraction_of_random_labels"]))
                for run in rows
                if (run["dataset"], run["library"], run["strategy"]) == (dataset, "al_ray", best["strategy"])
                and run["fraction_of_random_labels"] != ""
            ]
            entry.update(
                best=best["strategy"],
                labels=int(str(best["labels_to_random_final"])),
                fraction=float(str(best["fraction_of_random_labels"])),
                per_seed_median=float(np.median(shares)) if shares else None,
                seeds_reaching=len(shares),
                seeds=int(str(best["seeds"])),
            )
        result.append(entry)
    return result


# Colors per strategy, stable across datasets; random is drawn in black.
_PALETTE = (
    "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
    "tab:olive", "tab:cyan", "navy", "darkgoldenrod", "teal", "crimson", "slategray",
)  # fmt: skip
LIBRARY_STYLES = {"al_ray": "-", "modal": "--", "skactiveml": ":"}


def _color(strategy: str) -> str:
    if strategy == "random":
        return "black"
    others = [name for name in STRATEGIES if name != "random"]
    return _PALETTE[others.index(strategy) % len(_PALETTE)] if strategy in others else "gray"


def _draw(axis, row: dict[str, object], label: str, band: bool) -> None:
    labels = floats(row["labels"])
    mean = floats(row["accuracy_mean"])
    color = _color(str(row["strategy"]))
    axis.plot(
        labels, mean, LIBRARY_STYLES.get(str(row["library"]), "-"), color=color, label=label, linewidth=1.2
    )
    if band:
        spread = floats(row["accuracy_std"])
        axis.fill_between(labels, mean - spread, mean + spread, color=color, alpha=0.1)


def plot_dataset(path: Path, dataset: str, summary: Sequence[dict[str, object]]) -> None:
    """Plot one dataset's curves: al_ray's strategies together, then one panel per strategy with its peers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in summary if row["dataset"] == dataset and row["labels"] != ""]
    ours = {str(row["strategy"]): row for row in rows if row["library"] == "al_ray"}
    peered = [
        name for name in STRATEGIES if any(r["strategy"] == name and r["library"] != "al_ray" for r in rows)
    ]
    panels = 1 + len(peered)
    columns = min(4, panels)
    lines = -(-panels // columns)
    figure, axes = plt.subplots(
        lines, columns, figsize=(4.6 * columns, 3.6 * lines), squeeze=False, sharey=True
    )
    overview = axes[0][0]
    for name, row in ours.items():
        _draw(overview, row, name, band=False)
    overview.set_title(f"{dataset}: al_ray, mean of seeds", fontsize=9)
    overview.legend(fontsize=6, ncol=2)

    for axis, name in zip(axes.flat[1:], peered):
        if "random" in ours and name != "random":
            _draw(axis, ours["random"], "al_ray random", band=False)
        for row in rows:
            if row["strategy"] == name:
                _draw(axis, row, LIBRARY_TITLES[str(row["library"])], band=True)
        axis.set_title(f"{name} (mean ± 1 std)", fontsize=9)
        axis.legend(fontsize=6)
    for axis in axes.flat[panels:]:
        axis.set_visible(False)
    for axis in axes.flat[:panels]:
        axis.grid(alpha=0.3)
        axis.tick_params(labelsize=7)
    for axis in axes[-1]:
        axis.set_xlabel("labeled rows", fontsize=8)
    for line in axes:
        line[0].set_ylabel("test accuracy", fontsize=8)
    figure.tight_layout()
    save_figure(figure, path)


def _mean_std(mean: object, std: object) -> str:
    return "–" if mean == "" else f"{float(str(mean)):.3f} ± {float(str(std)):.3f}"


def _target_cell(row: dict[str, object]) -> str:
    if row["labels_to_target_mean"] == "":
        return f"not reached (0/{row['seeds']})"
    spread = "" if row["labels_to_target_std"] == "" else f" ± {float(str(row['labels_to_target_std'])):.0f}"
    return f"{float(str(row['labels_to_target_mean'])):.0f}{spread} ({row['seeds_reaching_target']}/{row['seeds']})"


def _random_cell(row: dict[str, object]) -> str:
    if row["random_final_accuracy_mean"] == "":
        return "–"
    if row["labels_to_random_final"] == "":
        return "not reached"
    return f"{row['labels_to_random_final']} ({100 * float(str(row['fraction_of_random_labels'])):.0f}%)"


def _peer_cell(row: dict[str, object] | None) -> str:
    if row is None:
        return "–"
    status = str(row["status"])
    if row["labels"] == "":
        return status.split(":")[0] if status.startswith("failed") else status
    text = f"{_mean_std(row['aulc_mean'], row['aulc_std'])} ({row['seeds']} seeds"
    if status.startswith("ok on"):
        # "ok on k/m; failed: ..." keeps its count and drops the error, which the failure list gives.
        text += f", {status.split(';')[0].removeprefix('ok on ')} ran, others failed"
    return text + ")"


def _seconds(rows: dict[str, dict[str, object]]) -> str:
    return " / ".join(
        "–"
        if rows.get(library) is None or rows[library]["seconds_mean"] == ""
        else f"{float(str(rows[library]['seconds_mean'])):.1f}"
        for library in LIBRARY_TITLES
    )


DATASET_HEADER = (
    "| strategy | final accuracy | final macro-F1 | AULC | labels to 95% of full pool (seeds reaching) "
    "| labels to random's final accuracy (% of random's) | modAL AULC | scikit-activeml AULC "
    "| s per run (al_ray / modAL / scikit-activeml) |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def dataset_table(dataset: str, summary: Sequence[dict[str, object]]) -> list[str]:
    """Return one dataset's table: al_ray's figures per strategy, the peers' AULC beside them."""
    lines = [DATASET_HEADER]
    for strategy in STRATEGIES:
        by_library = {
            str(row["library"]): row
            for row in summary
            if row["dataset"] == dataset and row["strategy"] == strategy
        }
        ours = by_library.get("al_ray")
        if ours is None:
            continue
        name = f"{strategy} (committee)" if is_committee_strategy(strategy) else strategy
        if ours["labels"] == "":
            lines.append(f"| {name} | {ours['status']} | – | – | – | – | – | – | – |")
            continue
        cells = [
            _mean_std(ours["final_accuracy_mean"], ours["final_accuracy_std"]),
            _mean_std(ours["final_macro_f1_mean"], ours["final_macro_f1_std"]),
            _mean_std(ours["aulc_mean"], ours["aulc_std"]),
            _target_cell(ours),
            _random_cell(ours),
            _peer_cell(by_library.get("modal")),
            _peer_cell(by_library.get("skactiveml")),
            _seconds(by_library),
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def headline_table(headlines: Sequence[dict[str, object]]) -> list[str]:
    """Return the headline table: labels al_ray's best strategy needs to reach random's final accuracy."""
    lines = [
        (
            "| dataset | random's final accuracy (labels) | best al_ray strategy | its labels to that accuracy "
            "| share of random's labels | per-seed median share (seeds reaching) | target | met |"
        ),
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for entry in headlines:
        target = entry["target"]
        target_text = "–" if target is None else f"≤ {100 * float(str(target)):.0f}%"
        random_text = (
            f"{float(str(entry['random_final_accuracy'])):.3f} ({entry['random_labels']})"
            if "random_labels" in entry
            else "–"
        )
        if entry["best"] is None:
            lines.append(
                f"| {entry['dataset']} | {random_text} | none reaches it | – | – | – | {target_text} | no |"
            )
            continue
        fraction = float(str(entry["fraction"]))
        median = entry["per_seed_median"]
        median_text = (
            "–"
            if median is None
            else f"{100 * float(str(median)):.0f}% ({entry['seeds_reaching']}/{entry['seeds']})"
        )
        if target is None:
            met = "–"
        else:
            met = "yes" if fraction <= float(str(target)) else "no"
        lines.append(
            f"| {entry['dataset']} | {random_text} | {entry['best']} | {entry['labels']} | {100 * fraction:.0f}% "
            f"| {median_text} | {target_text} | {met} |"
        )
    return lines


def peer_table(comparisons: Sequence[PeerComparison]) -> list[str]:
    """Return the table of paired differences, peer minus al_ray, with their verdicts."""
    lines = [
        "| dataset | strategy | peer | peer's query | seeds | Δ final accuracy | Δ AULC | seed spread (final / AULC) | verdict |",
        "|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    for item in comparisons:
        query = PEER_EQUIVALENTS[item.peer][item.strategy].name
        lines.append(
            f"| {item.dataset} | {item.strategy} | {LIBRARY_TITLES[item.peer]} | `{query}` | {item.seeds} "
            f"| {item.final_difference:+.3f} | {item.aulc_difference:+.3f} "
            f"| {item.final_spread:.3f} / {item.aulc_spread:.3f} | {item.verdict} |"
        )
    return lines


def _setup_line(setup: DatasetSetup, summary: Sequence[dict[str, object]], majority: float) -> str:
    full_pool = next(
        (
            row["full_pool_accuracy_mean"]
            for row in summary
            if row["dataset"] == setup.name and row["full_pool_accuracy_mean"] != ""
        ),
        "",
    )
    full_text = "" if full_pool == "" else f"; full-pool accuracy {float(str(full_pool)):.3f}"
    pool = f"{setup.pool_size:,}" if setup.pool_size is not None else "all remaining"
    return (
        f"- `{setup.name}`: {setup.initial_labeled} initial labels, {setup.rounds} rounds of {setup.batch} "
        f"({setup.initial_labeled + setup.rounds * setup.batch} labels at the end), a pool capped at {pool} rows, "
        f"{setup.test_size:,} test rows; logistic regression {setup.estimator_params}"
        f"{', standardized' if setup.standardize else ''}; majority-class accuracy {majority:.3f}{full_text}."
    )


def _peer_notes() -> list[str]:
    lines = []
    for peer, equivalents in PEER_EQUIVALENTS.items():
        for strategy, query in equivalents.items():
            if query.note:
                lines.append(f"- {LIBRARY_TITLES[peer]} `{query.name}` for `{strategy}`: {query.note}.")
    return lines


def _failures(summary: Sequence[dict[str, object]]) -> list[str]:
    lines = []
    for row in summary:
        status = str(row["status"])
        if "failed" in status:
            lines.append(
                f"- {row['dataset']}, {LIBRARY_TITLES[str(row['library'])]} `{row['strategy']}`: {status}"
            )
    return lines


def render_markdown(
    command: str,
    machine: str,
    setups: Sequence[DatasetSetup],
    majorities: dict[str, float],
    seeds: int,
    summary: Sequence[dict[str, object]],
    rows: Sequence[dict[str, object]],
    notes: Sequence[str] = (),
) -> str:
    """Return the generated part of the RESULTS.md section: command, machine, setup, tables and notes."""
    datasets = [setup.name for setup in setups]
    comparisons = compare_peers(rows)
    parts = [
        f"`{command}`",
        "",
        f"Machine: {machine}.",
        "",
        (
            f"{seeds} seeds. For each dataset and seed, `al_ray.data.make_split` gives one initial labeled set, "
            "one pool and one test set, and every library runs every strategy it has on that split with the same "
            "estimator (`al_ray.models.build_estimator`, refitted from scratch each round), batch and budget:"
        ),
        "",
        *(_setup_line(setup, summary, majorities[setup.name]) for setup in setups),
        "",
        (
            "The evaluated model is always that single estimator fitted on every labeled row. Committee strategies "
            "choose their queries with 5 logistic regressions bagged from the labeled rows, with al_ray's bootstrap "
            "seeds. Each peer fits the same 5 members on the same rows with its own code. The curves therefore compare "
            "the rows that each strategy picks, not the accuracy of an ensemble. Final accuracy, macro-F1 and AULC "
            "are mean ± std over seeds. AULC is the trapezoid area under the accuracy curve divided by the label "
            "range, so it is the mean accuracy over the budget. "
            f'"Labels to {FULL_POOL_FRACTION:.0%} of full pool" is the mean over the seeds that reach '
            f"{FULL_POOL_FRACTION:.0%} of the accuracy of the same estimator fitted on the initial set and the whole pool. "
            '"Labels to random\'s final accuracy" reads the mean curve against the mean final accuracy of '
            "al_ray's random sampling. Both are read at the measured rounds, so they move in steps of one batch and "
            "are upper bounds. Raw rows: `results/label_efficiency.csv`; summary: `results/label_efficiency_summary.csv`."
        ),
        "",
        "### Headline: labels to reach random's final accuracy",
        "",
        *headline_table(headline_rows(summary, rows)),
        "",
    ]
    for dataset in datasets:
        parts += [
            f"### {dataset}",
            "",
            f"![{dataset} learning curves](results/label_efficiency_{dataset}.png)",
            "",
            *dataset_table(dataset, summary),
            "",
        ]
    parts += [
        "### al_ray against peers running the same strategy",
        "",
        (
            "Differences are the peer's minus al_ray's, averaged over the seeds on which both finished, so a "
            "negative value means al_ray did better. The seed spread is the larger of the two standard deviations "
            'over those seeds. A peer is better "beyond the spread" when its mean lead exceeds that spread in '
            "final accuracy or AULC."
        ),
        "",
        *peer_table(comparisons),
        "",
        (
            '**Peers.** A strategy without an equivalent in a peer says "not in modAL" or "not in '
            'scikit-activeml" in the tables. modAL 0.4.2.1 has no random sampling, variation ratios, BALD for '
            "scikit-learn models, expected gradient length, BADGE, core-set or cluster-margin. Its "
            "`information_density` returns a density but does not query, and its `ranked_batch` is another batch "
            "rule. scikit-activeml 1.0.1 has no consensus entropy, max disagreement, cluster-margin or expected "
            "gradient length for classifiers, and it weights by density only through a `utility_weight` that the "
            "caller computes. modAL's `ActiveLearner.teach` fails "
            "with scikit-learn 1.8 and later (it passes `force_all_finite` to `check_X_y`), so each round builds a "
            "new `ActiveLearner` on the labeled rows and calls its `query`. Where a peer's query differs from al_ray's:"
        ),
        "",
        *_peer_notes(),
        "",
    ]
    failures = _failures(summary)
    if failures:
        parts += [
            "**Failed runs.** A peer run that raises is recorded and left out of its means:",
            "",
            *failures,
            "",
        ]
    parts += [*notes]
    return "\n".join(parts).rstrip() + "\n"
