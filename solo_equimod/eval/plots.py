"""The per-augmentation bar charts of the paper's Figures 3 (absolute displacement, Eq. 5) and 4
(relative displacement, Eq. 6); JSON/CSV reports are written by `solo_equimod.run.atomic`."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

from solo_equimod.run.atomic import write_bytes

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def bar_chart(labels: Sequence[str], series: Mapping[str, Sequence[float]], errors: Mapping[str, Sequence[float]],
              reference: float, ylabel: str, title: str, path: str | Path) -> Path:
    """Grouped bars (one group per label, one bar per series) with error bars and a dashed line at
    `reference`: the invariance value (0 for Eq. 5, 1 for Eq. 6), as in Figures 3 and 4."""
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(labels) * max(1, len(series)) ** 0.5, 3.2))
    width = 0.8 / max(1, len(series))
    for k, (name, values) in enumerate(series.items()):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(labels))]
        ax.bar(xs, values, width, yerr=errors.get(name), capsize=3, label=name)
    ax.axhline(reference, color="black", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(labels)), labels, rotation=20)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return write_bytes(Path(path), buf.getvalue())


def displacement_chart(results: Mapping[str, Mapping[str, Mapping[str, float]]], measure: str, title: str,
                       path: Path) -> Path:
    """Figure 3 or 4 from `{label: {measure: summary}}` (`displacement.summarize`): "absolute" (Eq. 5) as
    mean and standard deviation; "relative" (Eq. 6), a heavy-tailed ratio, as median and interquartile range."""
    labels = list(results)
    if measure == "absolute":
        values = [results[a][measure]["mean"] for a in labels]
        errors = [results[a][measure]["std"] for a in labels]
        return bar_chart(labels, {"mean": values}, {"mean": errors}, 0.0, "absolute displacement (Eq. 5)", title, path)
    values = [results[a][measure]["median"] for a in labels]
    iqr = [[values[i] - results[a][measure]["q25"] for i, a in enumerate(labels)],
           [results[a][measure]["q75"] - values[i] for i, a in enumerate(labels)]]
    return bar_chart(labels, {"median": values}, {"median": iqr}, 1.0, "relative displacement (Eq. 6)", title, path)
