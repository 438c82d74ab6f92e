"""EquiMod as an objective changes nothing: the loss terms and gradients of `simclr_equimod` and
`byol_equimod` on a fixed seeded batch, and the zoo model's features and predictions, equal those
recorded with the code before the refactor (`tests/data/equimod_reference.pt`, written by
`tests/data/record_equimod_reference.py` of commit e2a2387, when EquiMod was the `with_equimod`
subclass; the script used that API, so it left with it).

The reference holds old-form configs (`method: simclr_equimod`, `method_kwargs.equimod`, no
`config_version`) and old-form weights (`equimod.*`), so this also checks that both are still read,
and that a config saved before version 2 keeps its meaning: per-view BatchNorm batches in the heads,
the perceptron parameter encoder, affine last BNs (`versions.pin_saved_config`).

Features and gradients are compared at `assert_close`'s float32 tolerances, not bit for bit: float32
convolution kernels sum in an order that depends on the CPU's instruction set, so the same code gives
values up to ~1.5e-6 apart on a CPU other than the recording one (an AVX-512 Xeon, for one). A change
of behaviour moves them by orders of magnitude more."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from solo_equimod.methods import METHODS
from solo_equimod.versions import pin_saved_config
from solo_equimod.zoo import load_pretrained

REFERENCE = torch.load(Path(__file__).with_name("data") / "equimod_reference.pt", weights_only=False)


@pytest.mark.parametrize("method", ["simclr_equimod", "byol_equimod"])
def test_loss_terms_and_gradients_equal_the_pre_refactor_values(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = REFERENCE["methods"][method]
    cfg = pin_saved_config(ref["cfg"])
    assert cfg.method_kwargs.head_batches == cfg.objectives.equimod.head_batches == "per_view"
    model = METHODS[method](cfg)
    model.load_state_dict(ref["init_state"])  # old `equimod.*` keys
    model.train()
    # the recorded original is already normalised (random normal values, from before loaders delivered uint8
    # levels); normalising it is the batch stage's only work on these configs (tests/test_batch_stage.py)
    monkeypatch.setattr(model, "batch_stage", lambda batch: batch)
    n = ref["batch"]["target"].shape[0]
    batch = {**ref["batch"], "index": torch.arange(n), "image_size": torch.full((n, 2), 32), "extras": {}}
    out, _ = model.ssl_step(batch)
    base = model.cfg.method
    assert set(out) == {"loss", f"{base}_loss", "equimod_loss"}
    torch.testing.assert_close(out["loss"], ref["losses"]["loss"], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out[f"{base}_loss"], ref["losses"]["invariance_loss"], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out["equimod_loss"], ref["losses"]["equimod_loss"], rtol=1e-6, atol=1e-6)
    out["loss"].backward()
    grads = {k: p.grad for k, p in model.named_parameters() if p.grad is not None}
    expected = {k.replace("equimod.", "objectives.equimod.", 1) if k.startswith("equimod.") else k: g
                for k, g in ref["grads"].items()}
    assert set(grads) == set(expected)
    for name, grad in expected.items():
        torch.testing.assert_close(grads[name], grad, msg=name)


def test_zoo_model_gives_the_pre_refactor_features_and_predictions() -> None:
    ref = REFERENCE["zoo"]
    m = load_pretrained("simclr_equimod-synthetic-small")
    assert m.predictor is m.objectives["equimod"]
    with torch.no_grad():
        feats = m.backbone(ref["images"])
        z = m.predictor.embed(feats)
        pred = m.predictor.predict(z, ref["params"])
    torch.testing.assert_close(feats, ref["features"])
    torch.testing.assert_close(z, ref["z"])
    torch.testing.assert_close(pred, ref["predictions"])
