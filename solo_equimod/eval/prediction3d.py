"""SIE's measures of the predictor (facebookresearch/SIE eval_prediction_errors.py, eval_MRR_Hk.py), on
the equivariant embeddings of every view (the checkpoint's view predictor: SIE's equivariant
projector and hypernetwork, or EquiMod's g' and u trained on view pairs), L2-normalised, and the
predictions from view 0 of each object: zhat_i = normalise(predict(z_0, g(0 -> i))).

- PRE: the nearest neighbour of zhat_i among all target embeddings (modes train-train, val-val,
  val-(train+val)); PRE = mean(1 - <q_i, q_NN>^2) with the absolute rotation quaternions (0: the
  neighbour has the rotation of view i, up to the quaternion's sign).
- MRR, H@k: rank of view i among the views of its own object by cosine to zhat_i; MRR = mean(1 / rank),
  H@k = share ranked in the first k (k = 1, 2, 5, 10).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch.nn import functional as F

from solo_equimod.data.param_spec import param_spec
from solo_equimod.data.rotations import euler_xyz_quat
from solo_equimod.data.views3d import group_spec
from solo_equimod.errors import ConfigError
from solo_equimod.eval.loading import load_for_eval
from solo_equimod.eval.objects import (
    EncodedObjects,
    ObjectsEvalConfig,
    encoded_split,
    report_fields,
    report_files,
    save_report,
)
from solo_equimod.methods import BaseMethod
from solo_equimod.objectives.base import PredictsViews

HITS: tuple[int, ...] = (1, 2, 5, 10)


@torch.no_grad()
def embed_and_predict(predictor: PredictsViews, enc: EncodedObjects, group: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised embeddings (objects, views, d) and predictions from view 0 with g(0 -> view)."""
    objects, views, _ = enc.feats.shape
    z = enc.embedded if enc.embedded is not None else predictor.embed(enc.feats.flatten(0, 1)).view(objects, views, -1)
    g = torch.from_numpy(group.element(np.repeat(enc.latents[:, :1], views, 1), enc.latents)).flatten(0, 1)
    pred = predictor.predict(z[:, 0].repeat_interleave(views, 0), g).view(objects, views, -1)
    return F.normalize(z, dim=-1), F.normalize(pred, dim=-1)


def prediction_error(preds: torch.Tensor, query_quats: np.ndarray, targets: torch.Tensor, target_quats: np.ndarray,
                     chunk: int = 4096) -> float:
    """mean(1 - <q_query, q_NN>^2) with NN the target of largest cosine to each prediction (rows)."""
    nearest = torch.cat([(p @ targets.T).argmax(1) for p in preds.split(chunk)]).numpy()
    return float(np.mean(1 - (query_quats * target_quats[nearest]).sum(1) ** 2))


def ranks(z: torch.Tensor, preds: torch.Tensor) -> torch.Tensor:
    """(objects, views) rank (1 = best) of each view's embedding among its object's, by cosine to its prediction."""
    sims = torch.einsum("ovd,owd->ovw", preds, z)  # prediction for view v against every view w of the object
    true = sims.diagonal(dim1=1, dim2=2).unsqueeze(-1)
    return (sims > true).sum(-1) + 1


def retrieval(rank: torch.Tensor) -> dict[str, float]:
    out = {"mrr": float((1.0 / rank.double()).mean())}
    return {**out, **{f"h@{k}": float((rank <= k).double().mean()) for k in HITS}}


def _predictor(method: BaseMethod) -> PredictsViews:
    predictor = method.view_predictor
    if predictor is None:
        raise ConfigError(f"method {method.cfg.method!r} has no view predictor; PRE and MRR need one trained on view "
                         f"pairs: method sie or equicaps, or objectives.equimod on 3diebench / factors3d (classification, "
                         f"rotation and color apply to any checkpoint)")
    if param_spec(method.cfg).relative_to != "first_view":
        raise ConfigError("the checkpoint's predictor was trained on augmentation parameters, not on group elements "
                         "of view pairs: use the equivariance command")
    return predictor


def run_prediction(kind: str, raw_cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """`kind` "pre" (three modes) or "mrr" (MRR and H@k on val); writes `<kind>_<dataset>-<ckpt>.json` (+ .png)."""
    cfg, method = load_for_eval(raw_cfg, ObjectsEvalConfig)
    report_files(cfg, kind)
    predictor, group = _predictor(method), group_spec(method.cfg.data.group)
    splits = ("train", "val") if kind == "pre" else ("val",)
    encoded = {s: encoded_split(cfg, method, s) for s in splits}
    z, pred = {}, {}
    for s, enc in encoded.items():
        z[s], pred[s] = (t.flatten(0, 1) if kind == "pre" else t for t in embed_and_predict(predictor, enc, group))
    if kind == "pre":
        quats = {s: euler_xyz_quat(enc.latents[..., :3]).reshape(-1, 4) for s, enc in encoded.items()}
        scores = {"train-train": prediction_error(pred["train"], quats["train"], z["train"], quats["train"]),
                  "val-val": prediction_error(pred["val"], quats["val"], z["val"], quats["val"]),
                  "val-(train+val)": prediction_error(pred["val"], quats["val"], torch.cat([z["train"], z["val"]]),
                                                      np.concatenate([quats["train"], quats["val"]]))}
    else:
        scores = retrieval(ranks(z["val"], pred["val"]))
    report = {**report_fields(cfg, method), "measure": kind, "views_per_object": encoded["val"].feats.shape[1],
              kind: scores}
    return save_report(cfg, method, kind, kind, scores, report)
