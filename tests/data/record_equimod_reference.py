"""Records `tests/data/equimod_reference.pt` with the pre-objectives code (`with_equimod`), so the
refactor into `solo_equimod/objectives/` can be checked against the values it gave: the initial
weights, a fixed seeded batch, the loss terms and every gradient of `simclr_equimod` and
`byol_equimod`, and the zoo model's features and predictor outputs on fixed inputs.

    PYTHONPATH=. python tests/data/record_equimod_reference.py
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf

from solo_equimod.augment import layout_for, policies_from_config
from solo_equimod.methods import METHODS
from solo_equimod.zoo import load_pretrained
from tests.conftest import tiny_pretrain_cfg

OUT = Path(__file__).with_name("equimod_reference.pt")
HEADS = {"simclr_equimod": {"proj_hidden_dim": 64},
         "byol_equimod": {"proj_hidden_dim": 64, "pred_hidden_dim": 64, "proj_output_dim": 32}}


def record_method(method: str) -> dict:
    cfg = tiny_pretrain_cfg(method, Path("/tmp"), **{"data.num_classes": 10, "method_kwargs": {
        **HEADS[method], "equimod": {"proj_hidden_dim": 64, "param_stats_samples": 100}}})
    torch.manual_seed(0)
    model = METHODS[method](cfg)
    dim = layout_for(policies_from_config(cfg.augmentations)).dim
    g = torch.Generator().manual_seed(1)
    model.equimod.param_normalizer.fit(torch.rand(200, dim, generator=g) * 30)
    n = 12
    batch = {"views": [torch.randn(n, 3, 32, 32, generator=g) for _ in range(2)],
             "params": [torch.rand(n, dim, generator=g) * 30 for _ in range(2)],
             "original": torch.randn(n, 3, 32, 32, generator=g),
             "target": torch.randint(0, 10, (n,), generator=g)}
    init_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    out, _ = model.ssl_step(batch["views"], batch["params"], batch["original"])
    out["loss"].backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    return {"cfg": OmegaConf.to_container(cfg), "init_state": init_state, "batch": batch, "grads": grads,
            "losses": {k: v.detach().clone() for k, v in out.items()}}


def record_zoo() -> dict:
    m = load_pretrained("simclr_equimod-synthetic-small")
    g = torch.Generator().manual_seed(2)
    images = torch.randn(8, 3, 32, 32, generator=g)
    params = torch.rand(8, m.equimod.param_normalizer.mean.numel(), generator=g) * 30
    with torch.no_grad():
        feats = m.backbone(images)
        z = m.equimod.projector(feats)
        pred = m.equimod.predict(z, params)
    return {"images": images, "params": params, "features": feats, "z": z, "predictions": pred}


if __name__ == "__main__":
    torch.save({"methods": {m: record_method(m) for m in HEADS}, "zoo": record_zoo()}, OUT)
    print(f"wrote {OUT}")
