"""Weighted kNN evaluation of a frozen backbone (Wu et al. 2018, as used by lightly and solo-learn).

Features of the training split form the bank; each validation image votes with its `k` most
cosine-similar bank features, weighted by exp(sim / temperature). The voting is lightly's
`knn_predict`; this module only batches it, adds the progress bar and writes the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from lightly.utils.benchmarking import knn_predict
from omegaconf import DictConfig
from torch.nn import functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from solo_equimod.config.schema import DataConfig
from solo_equimod.data.batch import LabelledDataset
from solo_equimod.data.checks import check_splits
from solo_equimod.data.describe import num_classes_of
from solo_equimod.data.pretrain import build_eval_transform, build_split
from solo_equimod.errors import ConfigError
from solo_equimod.eval.features import extract_features
from solo_equimod.eval.loading import load_for_eval
from solo_equimod.eval.reports import method_label, report_path
from solo_equimod.run.atomic import refuse_existing, write_json


@dataclass
class KNNConfig:
    pretrained_feature_extractor: str = "???"
    data: DataConfig = field(default_factory=DataConfig)  # unset keys: the checkpoint's pretraining data
    k: int = 200  # Wu et al. 2018 / lightly default
    temperature: float = 0.1
    batch_size: int = 256
    num_workers: int = 2
    output: Optional[str] = None  # JSON report; default: knn_<dataset>-<checkpoint stem>.json next to the checkpoint
    overwrite: bool = False  # replace existing report files (else refused before the evaluation runs)


def knn_topk(train_feats: torch.Tensor, train_labels: torch.Tensor, test_feats: torch.Tensor,
             test_labels: torch.Tensor, num_classes: int, k: int = 200, temperature: float = 0.1,
             chunk: int = 512) -> dict[str, float]:
    """Top-1 / top-5 accuracy (in %) of cosine kNN voting of `test_feats` against the bank."""
    if k < 1:
        raise ConfigError(f"k={k} must be a positive number of neighbours")
    if temperature <= 0:
        raise ConfigError(f"temperature={temperature} must be positive")
    k = min(k, train_feats.shape[0])
    bank = F.normalize(train_feats, dim=1).t().contiguous()
    top5 = min(5, num_classes)
    hits1 = hits5 = 0
    for start in tqdm(range(0, test_feats.shape[0], chunk), desc="knn", leave=False):
        query = F.normalize(test_feats[start:start + chunk], dim=1)
        pred = knn_predict(query, bank, train_labels, num_classes, knn_k=k, knn_t=temperature)
        target = test_labels[start:start + chunk].unsqueeze(1)
        hits1 += int((pred[:, :1] == target).any(1).sum())
        hits5 += int((pred[:, :top5] == target).any(1).sum())
    n = test_feats.shape[0]
    return {"top1": 100.0 * hits1 / n, "top5": 100.0 * hits5 / n}


def run_knn(raw_cfg: DictConfig | dict) -> dict:
    """kNN top-1/top-5 on the validation split with train-split features as the bank; writes JSON."""
    cfg, method = load_for_eval(raw_cfg, KNNConfig)
    ckpt = Path(cfg.pretrained_feature_extractor)
    output = Path(cfg.output) if cfg.output else report_path(ckpt, "knn", cfg.data.dataset)
    refuse_existing([output], cfg.overwrite, flag="overwrite=true")
    transform = build_eval_transform(cfg)
    train_set, val_set = build_split(cfg, "train", transform), build_split(cfg, "val", transform)
    if val_set is None:
        raise ConfigError("kNN evaluation needs validation data: set data.val_path")
    check_splits(cfg, train_set, val_set)
    loader = lambda ds: DataLoader(LabelledDataset(ds), batch_size=cfg.batch_size, shuffle=False,  # noqa: E731
                                   num_workers=cfg.num_workers)
    train_feats, train_labels = extract_features(method.backbone, loader(train_set), "train features")
    val_feats, val_labels = extract_features(method.backbone, loader(val_set), "val features")
    num_classes = num_classes_of(train_set)  # the evaluation data's, whatever the pretraining data had
    result = {**knn_topk(train_feats, train_labels, val_feats, val_labels, num_classes, cfg.k, cfg.temperature),
              "k": cfg.k, "temperature": cfg.temperature, "dataset": cfg.data.dataset, "num_classes": num_classes,
              "method": method_label(method), "checkpoint": str(ckpt)}
    write_json(result, output)
    return result
