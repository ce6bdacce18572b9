"""PNG figures drawn from the report tables (matplotlib, Agg backend, 300 dpi).

Colours come from the Okabe-Ito palette and the cividis colour map, both readable with the
common forms of colour blindness. Every function takes tables, writes one file, returns it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from medbench.reports.metadata import parse_parameters  # noqa: E402

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
BASE = "#0072B2"
HIGHLIGHT = "#D55E00"
FIELD = "#999999"
DPI = 300


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return path


def _task_rows(matrix: pd.DataFrame) -> pd.DataFrame:
    return matrix[matrix["Task"] != "Overall"]


def _task_labels(frame: pd.DataFrame) -> list[str]:
    """`task5` plus its description on a second, wrapped line when there is one."""
    labels = []
    for task, description in zip(frame["Task"], frame["Description"]):
        labels.append(f"{task}\n" + "\n".join(textwrap.wrap(description, 14)) if description else task)
    return labels


def plot_leaderboard(board: pd.DataFrame, highlight: list[str], path: Path) -> Path:
    """Horizontal bars, best at the top, with Wilson 95% intervals and the value printed."""
    n = len(board)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.42 * n))
    y = np.arange(n)
    acc = board["Accuracy (%)"].to_numpy(dtype=float)
    errors = np.vstack(
        [acc - board["CI Low (%)"].to_numpy(dtype=float), board["CI High (%)"].to_numpy(dtype=float) - acc]
    )
    colours = [HIGHLIGHT if name in highlight else BASE for name in board["Model"]]
    ax.barh(y, acc, color=colours, xerr=errors, capsize=3, error_kw={"ecolor": "#333333", "elinewidth": 1})
    for yi, (value, high) in enumerate(zip(acc, board["CI High (%)"])):
        ax.text(min(high, 100) + 1.2, yi, f"{value:.1f}%", va="center", fontsize=9)
    ax.set_yticks(y, [f"{r}. {m}" for r, m in zip(board["Rank"], board["Model"])], fontsize=10)
    ax.invert_yaxis()
    ax.set_xlim(0, 112)
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("Accuracy (%) with Wilson 95% interval")
    ax.set_title("Leaderboard")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    return _save(fig, path)


def plot_task_heatmap(matrix: pd.DataFrame, path: Path) -> Path:
    """Models (rows, leaderboard order) x tasks, each cell annotated with its accuracy."""
    tasks = _task_rows(matrix)
    models = [c for c in matrix.columns if c not in ("Task", "Description")]
    values = tasks[models].to_numpy(dtype=float).T
    fig, ax = plt.subplots(figsize=(1.6 + 0.85 * len(tasks) + 0.08 * max(map(len, models)), 1.4 + 0.45 * len(models)))
    image = ax.imshow(values, cmap="cividis", vmin=0, vmax=100, aspect="auto")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            value = values[i, j]
            if np.isnan(value):
                continue
            ax.text(
                j, i, f"{value:.0f}", ha="center", va="center", fontsize=8, color="black" if value > 55 else "white"
            )
    ax.set_xticks(range(len(tasks)), _task_labels(tasks), fontsize=8)
    ax.set_yticks(range(len(models)), models, fontsize=9)
    ax.xaxis.tick_top()
    ax.set_title("Accuracy (%) per task", pad=12)
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02, label="Accuracy (%)")
    return _save(fig, path)


def plot_model_vs_field(comparison: pd.DataFrame, model: str, path: Path) -> Path:
    """Paired bars per task: the highlighted model beside the mean of the other models."""
    x = np.arange(len(comparison))
    fig, ax = plt.subplots(figsize=(max(8, 0.95 * len(comparison) + 2), 5), layout="constrained")
    mine = ax.bar(x - 0.2, comparison["Score (%)"], 0.4, color=HIGHLIGHT, label=model)
    field = ax.bar(x + 0.2, comparison["Field Average (%)"], 0.4, color=FIELD, label="Field average (other models)")
    for bars in (mine, field):
        ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=2)
    ax.set_xticks(x, _task_labels(comparison), fontsize=8)
    ax.set_ylim(0, 110)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("Accuracy (%)")
    ax.set_title(f"{model} vs the field, per task")
    fig.legend(loc="outside lower center", ncol=2, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return _save(fig, path)


def plot_task_difficulty(matrix: pd.DataFrame, difficulty: pd.DataFrame, path: Path) -> Path:
    """Per task (hardest first) the spread of model accuracies: box plus one dot per model."""
    tasks = _task_rows(matrix).set_index("Task")
    models = [c for c in matrix.columns if c not in ("Task", "Description")]
    order = list(difficulty["Task"])
    data = [tasks.loc[t, models].to_numpy(dtype=float) for t in order]
    fig, ax = plt.subplots(figsize=(max(8, 0.95 * len(order) + 2), 5), layout="constrained")
    ax.boxplot(
        data,
        positions=range(len(order)),
        widths=0.55,
        showfliers=False,
        medianprops={"color": HIGHLIGHT, "linewidth": 2},
        boxprops={"color": "#333333"},
    )
    jitter = np.random.default_rng(0)
    for i, values in enumerate(data):
        ax.scatter(
            i + jitter.uniform(-0.15, 0.15, len(values)),
            values,
            s=14,
            color=BASE,
            alpha=0.75,
            zorder=3,
            label="One model" if i == 0 else None,
        )
    ax.plot([], [], color=HIGHLIGHT, linewidth=2, label="Median")
    ax.plot(
        range(len(order)), difficulty["Average Accuracy (%)"], "D", color="black", markersize=5, label="Mean", zorder=4
    )
    ax.set_xticks(range(len(order)), _task_labels(difficulty), fontsize=8)
    ax.set_ylim(-5, 105)
    ax.set_ylabel("Model accuracy (%)")
    ax.set_title("Task difficulty: spread of model accuracies (hardest first)")
    fig.legend(loc="outside lower center", ncol=3, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return _save(fig, path)


def plot_grouped_bars(matrix: pd.DataFrame, models: list[str], path: Path) -> Path:
    """Per task, one bar per selected model (at most eight, one palette colour each)."""
    tasks = _task_rows(matrix)
    chosen = models[: len(OKABE_ITO)]
    width = 0.8 / max(1, len(chosen))
    x = np.arange(len(tasks))
    fig, ax = plt.subplots(figsize=(max(9, 1.1 * len(tasks) + 2), 5), layout="constrained")
    for i, (model, colour) in enumerate(zip(chosen, OKABE_ITO)):
        positions = x - 0.4 + width * (i + 0.5)
        ax.bar(positions, tasks[model], width, color=colour, label=model)
        for position, value in zip(positions, tasks[model]):
            if value == 0:
                ax.text(position, 1, "0", ha="center", va="bottom", fontsize=7, color="black")
    ax.set_xticks(x, _task_labels(tasks), fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("Accuracy (%)")
    ax.set_title("Per-task accuracy of selected models (a 0 marks a zero bar)")
    fig.legend(loc="outside lower center", ncol=min(4, len(chosen)), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return _save(fig, path)


def sized_models(board: pd.DataFrame) -> pd.DataFrame:
    """Leaderboard rows whose Parameters label gives a count, with a `billions` column."""
    sized = board.assign(billions=[parse_parameters(p) for p in board["Parameters"]])
    return sized[sized["billions"].notna()]


def plot_accuracy_vs_parameters(board: pd.DataFrame, highlight: list[str], path: Path) -> Path:
    """Accuracy against parameter count (log scale) for models whose size is known."""
    sized = sized_models(board)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    colours = [HIGHLIGHT if m in highlight else BASE for m in sized["Model"]]
    errors = np.vstack([sized["Accuracy (%)"] - sized["CI Low (%)"], sized["CI High (%)"] - sized["Accuracy (%)"]])
    ax.errorbar(
        sized["billions"], sized["Accuracy (%)"], yerr=errors, fmt="none", ecolor="#999999", elinewidth=1, capsize=2
    )
    ax.scatter(sized["billions"], sized["Accuracy (%)"], c=colours, s=50, zorder=3)
    placed: list[tuple[float, float]] = []
    for name, size, acc in zip(sized["Model"], sized["billions"], sized["Accuracy (%)"]):
        near = sum(abs(np.log10(size) - np.log10(s)) < 0.15 and abs(acc - a) < 6 for s, a in placed)
        ax.annotate(name, (size, acc), xytext=(7, -4 - 11 * near), textcoords="offset points", fontsize=8)
        placed.append((size, acc))
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}B"))
    ax.set_xlim(sized["billions"].min() / 2, sized["billions"].max() * 4)
    ax.set_ylim(0, 105)
    ax.set_xlabel("Parameters (billions, log scale)")
    ax.set_ylabel("Accuracy (%)")
    ax.set_title("Accuracy vs parameter count (models with a known size)")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_failure_breakdown(breakdown: pd.DataFrame, path: Path) -> Path:
    """Stacked shares of each outcome per model: correct, wrong answer, and each failure status."""
    parts = ["Correct", "Completed Incorrect", "Invalid Actions", "Limit Reached", "Context Limit", "Errors", "Other"]
    parts = [p for p in parts if breakdown[p].sum() > 0]
    shares = breakdown[parts].div(breakdown["Total"], axis=0) * 100
    n = len(breakdown)
    fig, ax = plt.subplots(figsize=(9, 1.6 + 0.42 * n), layout="constrained")
    left = np.zeros(n)
    for part, colour in zip(
        parts, [OKABE_ITO[2], FIELD, OKABE_ITO[5], OKABE_ITO[1], OKABE_ITO[3], "#000000", OKABE_ITO[4]]
    ):
        ax.barh(range(n), shares[part], left=left, color=colour, label=part)
        left += shares[part].to_numpy()
    ax.set_yticks(range(n), breakdown["Model"], fontsize=10)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("Share of attempts (%)")
    ax.set_title("Outcome of every attempt")
    fig.legend(loc="outside lower center", ncol=min(4, len(parts)), frameon=False)
    return _save(fig, path)
