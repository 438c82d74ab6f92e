"""The documentation's pictures, drawn from the committed results files (not a measurement):

    python benchmarks/plots.py        # -> docs/assets/plots/*.png

equivariance bars (Eq. 5 / Eq. 6 per augmentation, the 15-epoch budget), linear top-1 at a budget
(every comparison folder) and loader throughput (the interleaved CIFAR run). Each figure's title
names its machine; the docs page beside it names the command that measured it."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS, OUT = REPO / "benchmarks/results", REPO / "docs/assets/plots"
MACHINE = "2-core x86_64 CPU"


def _runs(folder: str) -> dict[str, list[dict]]:
    by_method: dict[str, list[dict]] = {}
    for run in json.loads((RESULTS / folder / "summary.json").read_text())["runs"].values():
        for seed_run in run if isinstance(run, list) else [run]:
            by_method.setdefault(seed_run["method"], []).append(seed_run)
    return by_method


def _bars(ax, labels: list[str], values: list[list[float]], ylabel: str) -> None:
    means = [statistics.mean(v) for v in values]
    stds = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
    ax.bar(range(len(labels)), means, yerr=stds, capsize=3, color="#4c72b0")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylabel(ylabel)


def linear_top1(folder: str, title: str) -> Path:
    runs = _runs(folder)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(runs) + 2), 3.2))
    _bars(ax, list(runs), [[r["linear"]["top1"] for r in rs] for rs in runs.values()], "linear top-1 (%)")
    ax.set_title(f"{title}\n{MACHINE}, mean ± std over seeds", fontsize=9)
    return _save(fig, f"linear_top1_{folder}.png")


def equivariance(folder: str, method: str) -> Path:
    runs = _runs(folder)[method]
    measures = runs[0]["equivariance"]["measures"]
    names = list(measures)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, (key, stat, label) in zip(axes, [("absolute", "mean", "absolute (Eq. 5), > 0: better than invariant"),
                                            ("relative", "median", "relative (Eq. 6), > 1: better than invariant")]):
        _bars(ax, names, [[r["equivariance"]["measures"][n][key][stat] for r in runs] for n in names], label)
    fig.suptitle(f"{method}, {folder}: {MACHINE}, mean ± std over {len(runs)} seeds", fontsize=9)
    return _save(fig, f"equivariance_{folder}.png")


def loader_throughput(name: str) -> Path:
    result = json.loads((RESULTS / f"{name}.json").read_text())
    rows = result["images_per_s_rounds"]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.barh(list(rows), [statistics.median(v) for v in rows.values()], color="#55a868",
            xerr=[[statistics.median(v) - min(v) for v in rows.values()],
                  [max(v) - statistics.median(v) for v in rows.values()]], capsize=3)
    ax.set_xlabel("images/s (median, bars: range over rounds)")
    ax.set_title(f"CIFAR-10 subset, batch 128, 2 workers: {MACHINE}", fontsize=9)
    return _save(fig, f"{name}.png")


def _save(fig, name: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(OUT / name, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return OUT / name


def main() -> None:
    made = [equivariance("budget15", "simclr_equimod"), linear_top1("budget15", "15 epochs, tiny_cnn"),
            linear_top1("compare", "12 steps, tiny_cnn"), linear_top1("compare_objectives", "12 steps, tiny_cnn"),
            linear_top1("compare_care", "12 steps, tiny_cnn"), loader_throughput("augment_cifar_interleaved")]
    print("\n".join(str(p.relative_to(REPO)) for p in made))


if __name__ == "__main__":
    main()
