"""Model zoo: download against a local HTTP server (good file, 404, truncated transfer, wrong hash),
cache and offline use, export (slim, fp16 restored to fp32, exact statistics), the shipped entry."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest
import timm
import torch
import torchvision
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from solo_equimod.errors import ConfigError
from solo_equimod.methods import METHODS
from solo_equimod.zoo import ZooError, fetch, load_manifest, load_pretrained
from solo_equimod.zoo.__main__ import main as zoo_cli
from solo_equimod.zoo.export import export_checkpoint
from solo_equimod.zoo.manifest import add_to_manifest
from tests.conftest import REPO, snapshot, tiny_pretrain_cfg

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == "/missing.pt":
            self.send_error(404, "Not Found")
            return
        body = PAYLOAD[::-1] if self.path == "/wrong.pt" else PAYLOAD
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # truncated: the header promises the whole file, the connection closes after half of it
        self.wfile.write(body[: len(body) // 2] if self.path == "/truncated.pt" else body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.is_dir() else []


def test_good_download_is_cached_and_works_offline(server: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = fetch(f"{server}/good.pt", SHA, len(PAYLOAD), "good.pt", cache)
    assert path == cache / "good.pt" and path.read_bytes() == PAYLOAD
    # offline: an unreachable URL is never contacted once the verified file is cached
    again = fetch("http://127.0.0.1:9/unreachable.pt", SHA, len(PAYLOAD), "good.pt", cache)
    assert again == path and _cache_files(cache) == ["good.pt"]


def test_404_names_the_status_and_leaves_nothing(server: str, tmp_path: Path) -> None:
    with pytest.raises(ZooError, match=r"missing\.pt failed: HTTP 404"):
        fetch(f"{server}/missing.pt", SHA, len(PAYLOAD), "m.pt", tmp_path)
    assert _cache_files(tmp_path) == []


def test_truncated_transfer_is_refused_and_removed(server: str, tmp_path: Path) -> None:
    with pytest.raises(ZooError, match=rf"size {len(PAYLOAD) // 2} bytes, expected {len(PAYLOAD)}"):
        fetch(f"{server}/truncated.pt", SHA, len(PAYLOAD), "t.pt", tmp_path)
    assert _cache_files(tmp_path) == []


def test_wrong_hash_is_refused_and_removed(server: str, tmp_path: Path) -> None:
    wrong = hashlib.sha256(PAYLOAD[::-1]).hexdigest()
    with pytest.raises(ZooError, match=rf"sha256 {wrong}, expected {SHA}.*removed"):
        fetch(f"{server}/wrong.pt", SHA, len(PAYLOAD), "w.pt", tmp_path)
    assert _cache_files(tmp_path) == []


def test_corrupted_cache_and_stale_partial_are_never_used(server: str, tmp_path: Path) -> None:
    (tmp_path / ".good.pt.abc.partial").write_bytes(PAYLOAD[:10])  # a killed download's leftover
    (tmp_path / "good.pt").write_bytes(PAYLOAD[:-1] + b"x")  # same size, wrong content
    with pytest.raises(ZooError, match="sha256"):
        fetch(f"{server}/good.pt", SHA, len(PAYLOAD), "good.pt", tmp_path)
    assert not (tmp_path / "good.pt").exists()
    assert fetch(f"{server}/good.pt", SHA, len(PAYLOAD), "good.pt", tmp_path).read_bytes() == PAYLOAD


def test_file_url_and_relative_path(tmp_path: Path) -> None:
    src = tmp_path / "src" / "w.pt"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    assert fetch(src.as_uri(), SHA, len(PAYLOAD), "a.pt", tmp_path / "c1").read_bytes() == PAYLOAD
    assert fetch("w.pt", SHA, len(PAYLOAD), "b.pt", tmp_path / "c2", base_dir=src.parent).read_bytes() == PAYLOAD
    with pytest.raises(ZooError, match="cannot open"):
        fetch("nope.pt", SHA, len(PAYLOAD), "c.pt", tmp_path / "c3", base_dir=src.parent)
    with pytest.raises(ZooError, match="unsupported URL scheme 'ftp'"):
        fetch("ftp://x/y.pt", SHA, len(PAYLOAD), "d.pt", tmp_path / "c4")


def _fake_trained_checkpoint(tmp_path: Path) -> Path:
    """A Lightning-style checkpoint of a freshly built simclr_equimod, with optimizer state and
    non-trivial parameter statistics, so export has something to drop and something to keep."""
    cfg = tiny_pretrain_cfg("simclr_equimod", tmp_path, **{"data.num_classes": 10})
    model = METHODS["simclr_equimod"](cfg)
    equimod = model.objectives["equimod"]
    equimod.param_normalizer.fit(torch.randn(100, equimod.param_layout.dim) * 7.3 + 1.1)
    path = tmp_path / "trained.ckpt"
    torch.save({"hyper_parameters": dict(model.hparams), "state_dict": model.state_dict(), "epoch": 3,
                "global_step": 40, "optimizer_states": [{"state": {0: torch.zeros(1000)}}]}, path)
    return path


def test_export_then_load_by_name(tmp_path: Path) -> None:
    ckpt = _fake_trained_checkpoint(tmp_path)
    (tmp_path / "linear.json").write_text(json.dumps({"top1": 55.5, "top5": 90.0, "dataset": "synthetic",
                                                          "epochs": 100, "min_lr": 1e-4}))
    entry = export_checkpoint(ckpt, tmp_path / "linear.json", "tiny", tmp_path / "zoo" / "tiny.pt", "tiny.pt",
                              "python main_linear.py ...")
    slim = torch.load(tmp_path / "zoo" / "tiny.pt", weights_only=False)
    assert set(slim) == {"hyper_parameters", "state_dict"}  # no optimizer or loop state
    assert entry.metrics == {"top1": 55.5, "top5": 90.0} and entry.method == "simclr_equimod"
    assert entry.size == (tmp_path / "zoo" / "tiny.pt").stat().st_size
    add_to_manifest(entry, tmp_path / "zoo" / "manifest.json")

    model = load_pretrained("tiny", cache=tmp_path / "cache", manifest=tmp_path / "zoo" / "manifest.json")
    original = torch.load(ckpt, weights_only=False)["state_dict"]
    loaded = model.method.state_dict()
    assert all(v.dtype == torch.float32 for v in loaded.values() if v.is_floating_point())
    for key, value in original.items():  # parameters within fp16 rounding, buffers exact
        tol = 0 if key.endswith(("mean", "std", "running_var", "running_mean")) else 1e-3
        torch.testing.assert_close(loaded[key], value, atol=tol * value.abs().max().item() + tol, rtol=tol)
    assert torch.equal(model.predictor.param_normalizer.std, original["objectives.equimod.param_normalizer.std"])
    x = torch.randn(2, 3, 32, 32)
    assert model.backbone(x).shape == (2, model.features_dim)
    assert model.predictor is model.objectives["equimod"] and not model.method.training


def test_unknown_name_lists_the_zoo(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a checkpoint file nor a zoo name; zoo names: simclr_equimod"):
        load_pretrained("no-such-model", cache=tmp_path)


@pytest.mark.parametrize("name", list(load_manifest()))
def test_shipped_entry_lists_verifies_and_loads(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each in-repo checkpoint: small, verified, loads to fp32 with its EquiMod head."""
    entry = load_manifest()[name]
    assert entry.size < 3_000_000 and entry.metrics["top1"] > 0 and "main_linear.py" in entry.metrics_command
    assert zoo_cli(["--cache", str(tmp_path), "list"]) == 0
    assert entry.name in capsys.readouterr().out
    assert zoo_cli(["--cache", str(tmp_path), "verify", entry.name]) == 0
    assert capsys.readouterr().out.startswith(f"OK {entry.name}")
    model = load_pretrained(entry.name, cache=tmp_path)
    assert model.predictor is model.objectives["equimod"] and entry.method == "simclr_equimod"
    assert model.method.cfg.method == "simclr"  # simclr_equimod is simclr + objectives.equimod
    assert next(model.backbone.parameters()).dtype == torch.float32
    assert zoo_cli(["--cache", str(tmp_path), "verify", "nope"]) == 2


def test_bad_manifests_name_the_entry_and_field(tmp_path: Path) -> None:
    good = json.loads(Path(load_manifest()["simclr_equimod-synthetic-small"].base_dir / "manifest.json").read_text())
    missing, extra = json.loads(json.dumps(good)), json.loads(json.dumps(good))
    del missing["models"][0]["sha256"]
    extra["models"][0]["base_dir"] = "/elsewhere"
    for broken, message in ((missing, "lacks sha256"), (extra, r"unknown field\(s\) \['base_dir'\]")):
        (tmp_path / "m.json").write_text(json.dumps(broken))
        with pytest.raises(ValueError, match=message):
            load_manifest(tmp_path / "m.json")
    broken = json.loads(json.dumps(good))
    broken["models"] *= 2
    (tmp_path / "m.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="duplicate entry name"):
        load_manifest(tmp_path / "m.json")
    with pytest.raises(FileNotFoundError, match="SOLO_EQUIMOD_ZOO_MANIFEST"):
        load_manifest(tmp_path / "absent.json")


def test_the_zoo_works_from_a_non_editable_install(tmp_path: Path) -> None:
    """The manifest and the in-repo weights are package data: a wheel built from the sources,
    installed elsewhere, lists and loads the shipped model (no lookup relative to a checkout)."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "solo_equimod", src / "solo_equimod", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "setup.py", src / "setup.py")
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)], check=True,
                   capture_output=True)
    code = ("import solo_equimod; from solo_equimod.zoo import load_pretrained; "
            "m = load_pretrained('simclr_equimod-synthetic-small', cache='cache'); "
            "print(solo_equimod.__file__); print(m.path)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(tmp_path / "site")}).stdout.splitlines()
    assert out[0].startswith(str(tmp_path / "site")) and (tmp_path / out[1]).is_file()


def test_export_refuses_an_existing_file_or_entry_unless_overwrite(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = _fake_trained_checkpoint(tmp_path)
    (tmp_path / "linear.json").write_text(json.dumps({"top1": 55.5}))
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    (zoo / "tiny.pt").write_bytes(b"a user's file")
    args = ["--manifest", str(zoo / "manifest.json"), "export", str(ckpt), "--eval-json", str(tmp_path / "linear.json"),
            "--name", "tiny", "--out", str(zoo / "tiny.pt"), "--url", "tiny.pt", "--metrics-command", "m", "--write"]
    assert zoo_cli(args) == 2 and snapshot(zoo) == {"tiny.pt": b"a user's file"}
    assert capsys.readouterr().err == (f"error: {zoo / 'tiny.pt'} already exists; refusing to overwrite it: remove it, "
                                       f"choose another output, or pass --overwrite\n")
    assert zoo_cli([*args, "--overwrite"]) == 0 and (zoo / "tiny.pt").read_bytes() != b"a user's file"
    before = snapshot(zoo)
    new_file = {str(zoo / "tiny.pt"): str(zoo / "other.pt"), "tiny.pt": "other.pt"}
    renamed = [new_file.get(a, a) for a in args]  # a new file, the same entry name
    assert zoo_cli(renamed) == 2 and snapshot(zoo) == before  # neither other.pt nor the manifest written
    assert f"{zoo / 'manifest.json'} already has an entry 'tiny'" in capsys.readouterr().err
    assert zoo_cli([*renamed, "--overwrite"]) == 0
    assert [m["url"] for m in json.loads((zoo / "manifest.json").read_text())["models"]] == ["other.pt"]


@pytest.mark.parametrize("backbone", ["resnet18", "resnet10t"])  # torchvision's (CIFAR stem) and timm's
def test_safetensors_export_loads_as_the_torch_one_and_its_backbone_by_name(backbone: str, tmp_path: Path) -> None:
    """A safetensors export holds tensors and the config (JSON metadata) only; `load_pretrained`
    reads it as the torch export, and its `backbone.` tensors load into the model of that name with
    the ordinary strict `load_state_dict`."""
    cfg = tiny_pretrain_cfg("simclr_equimod", tmp_path, **{"data.num_classes": 10})
    cfg.backbone = {"name": backbone}
    model = METHODS["simclr_equimod"](cfg)
    model.objectives["equimod"].param_normalizer.fit(torch.randn(50, model.objectives["equimod"].param_layout.dim))
    ckpt = tmp_path / "trained.ckpt"
    torch.save({"hyper_parameters": dict(model.hparams), "state_dict": model.state_dict()}, ckpt)
    (tmp_path / "linear.json").write_text(json.dumps({"top1": 55.5}))
    entry = export_checkpoint(ckpt, tmp_path / "linear.json", "tiny", tmp_path / "tiny.safetensors",
                              "tiny.safetensors", "python main_linear.py ...")
    assert entry.sha256 == hashlib.sha256((tmp_path / "tiny.safetensors").read_bytes()).hexdigest()
    export_checkpoint(ckpt, tmp_path / "linear.json", "tiny", tmp_path / "tiny.pt", "tiny.pt", "...")
    with safe_open(str(tmp_path / "tiny.safetensors"), framework="pt") as f:
        assert json.loads(f.metadata()["solo_equimod_config"]) == dict(model.hparams)["cfg"]
    from_safetensors, from_torch = load_pretrained(tmp_path / "tiny.safetensors"), load_pretrained(tmp_path / "tiny.pt")
    torch_state = from_torch.method.state_dict()
    assert all(torch.equal(v, torch_state[k]) for k, v in from_safetensors.method.state_dict().items())
    assert from_safetensors.predictor is from_safetensors.objectives["equimod"]

    tensors = load_file(tmp_path / "tiny.safetensors")
    state = {k.removeprefix("backbone."): v.float() for k, v in tensors.items() if k.startswith("backbone.")}
    if backbone == "resnet18":
        net = torchvision.models.resnet18()
        net.fc, net.maxpool = nn.Identity(), nn.Identity()
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)  # the CIFAR stem of 32 px data
    else:
        net = timm.create_model(backbone, num_classes=0)
    net.load_state_dict(state)  # strict: every key of the named model, nothing else
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(net.eval()(x), from_safetensors.backbone(x), atol=1e-5)


def test_zoo_list_rounds_as_the_docs(capsys: pytest.CaptureFixture[str]) -> None:
    assert zoo_cli(["list"]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.startswith("simclr_equimod-synthetic\t"))
    assert "top1=49.4, top5=98.4" in line  # README's model-zoo table: 49.4 / 98.4
