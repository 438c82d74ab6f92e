"""kNN evaluation: lightly's weighted voting, batched, against a naive per-query loop, and the command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from solo_equimod.data.dataset_info import DATASET_INFO
from solo_equimod.data.datasets import build_dataset
from solo_equimod.eval.knn import knn_topk, run_knn
from solo_equimod.methods import METHODS
from solo_equimod.run.checkpoints import load_method, save_method
from tests.conftest import REPO, tiny_pretrain_cfg


def naive_knn_rank(query: torch.Tensor, bank: torch.Tensor, labels: torch.Tensor, num_classes: int, k: int,
                   t: float) -> list[list[int]]:
    """Per query: cosine similarity to every bank vector, the k largest vote exp(sim / t) for their class."""
    ranks = []
    for q in query:
        sims = [float(torch.dot(q, b) / (q.norm() * b.norm())) for b in bank]
        top = sorted(range(len(sims)), key=lambda i: -sims[i])[:k]
        scores = [0.0] * num_classes
        for i in top:
            scores[int(labels[i])] += float(torch.exp(torch.tensor(sims[i] / t)))
        ranks.append(sorted(range(num_classes), key=lambda c: -scores[c]))
    return ranks


def test_knn_matches_naive_voting() -> None:
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(6, 8, generator=g)
    bank_labels = torch.randint(0, 6, (60,), generator=g)
    bank = centers[bank_labels] + 0.8 * torch.randn(60, 8, generator=g)
    test_labels = torch.randint(0, 6, (25,), generator=g)
    test = centers[test_labels] + 0.8 * torch.randn(25, 8, generator=g)
    ranks = naive_knn_rank(test, bank, bank_labels, 6, k=7, t=0.5)
    top1 = 100 * sum(r[0] == int(y) for r, y in zip(ranks, test_labels)) / 25
    top5 = 100 * sum(int(y) in r[:5] for r, y in zip(ranks, test_labels)) / 25
    out = knn_topk(bank, bank_labels, test, test_labels, 6, k=7, temperature=0.5, chunk=4)
    assert out == pytest.approx({"top1": top1, "top5": top5})
    assert 0 < top1 < 100


def test_knn_hand_case_and_errors() -> None:
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = torch.tensor([0, 0, 1, 1])
    out = knn_topk(bank, labels, torch.tensor([[1.0, 0.2], [0.2, 1.0]]), torch.tensor([0, 0]), 2, k=2)
    assert out == {"top1": 50.0, "top5": 100.0}
    with pytest.raises(ValueError, match="k=0"):
        knn_topk(bank, labels, bank, labels, 2, k=0)
    with pytest.raises(ValueError, match="temperature"):
        knn_topk(bank, labels, bank, labels, 2, temperature=0.0)


def test_command_writes_json_next_to_checkpoint(tmp_path: Path) -> None:
    cfg = tiny_pretrain_cfg("byol", tmp_path, **{"data.num_classes": 10, "data.synthetic_size": 32})
    ckpt = save_method(METHODS["byol"](cfg), tmp_path / "run" / "last.ckpt")
    result = run_knn({"pretrained_feature_extractor": str(ckpt), "k": 5, "num_workers": 0})
    saved = json.loads((tmp_path / "run" / "knn_synthetic-last.json").read_text())
    assert saved == result and saved["k"] == 5 and saved["method"] == "byol"
    assert 0.0 <= saved["top1"] <= saved["top5"] <= 100.0


def test_command_equals_a_naive_cosine_knn_on_the_zoo_models_features(tmp_path: Path) -> None:
    """The command on the in-repo zoo model: its top-1 is a naive cosine kNN over features computed here,
    and the report names the method with its objectives."""
    zoo_file = REPO / "solo_equimod" / "zoo" / "weights" / "simclr_equimod-synthetic-small.safetensors"
    data = {"dataset": "synthetic", "synthetic_size": 48, "num_workers": 0}
    result = run_knn({"pretrained_feature_extractor": str(zoo_file), "k": 10, "temperature": 0.1, "num_workers": 0,
                      "data": data, "output": str(tmp_path / "knn.json")})
    assert result["method"] == "simclr+equimod"
    backbone = load_method(zoo_file).backbone.eval()
    info = DATASET_INFO["synthetic"]

    def features(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        images = build_dataset("synthetic", None, split, None, synthetic_size=48 if split == "train" else None)
        x = torch.stack([TF.normalize(TF.to_dtype(TF.pil_to_tensor(img), torch.float32, scale=True), info.mean, info.std)
                         for img, _ in images])
        with torch.no_grad():
            return backbone(x), torch.tensor([int(y) for _, y in images])

    (bank, bank_labels), (query, labels) = features("train"), features("val")
    ranks = naive_knn_rank(query, bank, bank_labels, 10, k=10, t=0.1)
    assert result["top1"] == pytest.approx(100 * sum(r[0] == int(y) for r, y in zip(ranks, labels)) / len(labels))
