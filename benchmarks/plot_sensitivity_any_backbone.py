"""The figures of docs/guide/evaluate-any-model.md from benchmarks/results/sensitivity_any_backbone/results.json
(written by benchmarks/sensitivity_any_backbone.py): per augmentation, the representation shift
1 - cos(h(x), h(t(x))) (mean and std over images) and the parameter probe's R^2, one bar per model.

    python benchmarks/plot_sensitivity_any_backbone.py
"""

from __future__ import annotations

import json
from pathlib import Path

from solo_equimod.eval.augmentation_views import AUGMENTATION_LABELS
from solo_equimod.eval.plots import bar_chart

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "sensitivity_any_backbone" / "results.json"
FIGURES = REPO / "docs" / "guide" / "img"


def main() -> None:
    reports = json.loads(RESULTS.read_text())["reports"]
    first = next(iter(reports.values()))
    shifted = list(first["representation_shift"])
    probed = list(first["probe_r2"])
    n = first["num_test"]
    bar_chart([AUGMENTATION_LABELS[a] for a in shifted],
              {m: [r["representation_shift"][a]["mean"] for a in shifted] for m, r in reports.items()},
              {m: [r["representation_shift"][a]["std"] for a in shifted] for m, r in reports.items()}, 0.0,
              "1 - cos(h(x), h(t(x)))", f"representation shift, CIFAR-10 subset val (n={n})",
              FIGURES / "sensitivity_any_backbone_shift.png")
    bar_chart([AUGMENTATION_LABELS[a] for a in probed],
              {m: [r["probe_r2"][a] for a in probed] for m, r in reports.items()}, {}, 0.0,
              "R^2 of the parameter probe", f"parameters read from [h(x), h(t(x))] (n={n})",
              FIGURES / "sensitivity_any_backbone_probe.png")
    print(f"wrote {FIGURES}/sensitivity_any_backbone_{{shift,probe}}.png")


if __name__ == "__main__":
    main()
