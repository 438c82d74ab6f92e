"""Loading never runs pickled code: crafted checkpoints and zoo files are refused before anything
of them executes (the marker file their `__reduce__` would create never appears), while our own
checkpoints load unchanged. Zoo cache permissions and malformed manifests name the file."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import stat
from pathlib import Path

import pytest
import torch

from solo_equimod.eval.__main__ import main as eval_cli
from solo_equimod.run import atomic
from solo_equimod.run.checkpoints import load_method
from solo_equimod.run.safe_load import UnreadableCheckpointError, UnsafeCheckpointError, load_checkpoint_file
from solo_equimod.run.training import pretrain
from solo_equimod.zoo import ZooError, fetch, load_manifest, load_pretrained
from tests.conftest import Evil, tiny_pretrain_cfg, write_malicious_checkpoint


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "code-ran"


def test_the_crafted_file_really_runs_code_under_plain_pickle(tmp_path: Path, marker: Path) -> None:
    """The reference: without weights_only the payload executes; every test below must prevent it."""
    path = write_malicious_checkpoint(tmp_path / "evil.ckpt", marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_crafted_checkpoints_are_refused_without_running(tmp_path: Path, marker: Path) -> None:
    zipped = write_malicious_checkpoint(tmp_path / "evil.ckpt", marker)
    legacy = tmp_path / "legacy.ckpt"  # a plain pickle stream, torch's pre-zip format
    legacy.write_bytes(pickle.dumps({"state_dict": {}, "payload": Evil(marker)}))
    for path in (zipped, legacy):
        with pytest.raises(UnsafeCheckpointError, match=rf"{path.name} holds pickled objects .* refused"):
            load_checkpoint_file(path)
        with pytest.raises(UnsafeCheckpointError, match=path.name):
            load_method(path)
        with pytest.raises(UnsafeCheckpointError, match=path.name):
            load_pretrained(path)
    assert not marker.exists()


def test_evaluation_cli_refuses_a_crafted_checkpoint(tmp_path: Path, marker: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = write_malicious_checkpoint(tmp_path / "evil.ckpt", marker)
    assert eval_cli(["knn", str(path)]) == 2
    assert "evil.ckpt holds pickled objects" in capsys.readouterr().err
    assert not marker.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["evil.ckpt"]


def test_a_zoo_entry_serving_a_crafted_file_is_refused(tmp_path: Path, marker: Path) -> None:
    """The sha256 matches (the manifest vouches for the bytes), the loader must still refuse them."""
    weights = write_malicious_checkpoint(tmp_path / "evil.pt", marker)
    data = weights.read_bytes()
    entry = {"name": "evil", "method": "simclr", "dataset": "synthetic", "backbone": "tiny_cnn", "epochs": 1,
             "config": {}, "metrics": {"top1": 1.0}, "metrics_command": "x", "url": "evil.pt",
             "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (tmp_path / "manifest.json").write_text(json.dumps({"version": 1, "models": [entry]}))
    with pytest.raises(UnsafeCheckpointError, match=r"evil\.pt holds pickled objects"):
        load_pretrained("evil", cache=tmp_path / "cache", manifest=tmp_path / "manifest.json")
    assert not marker.exists()


def test_truncated_file_is_unreadable_and_named(tmp_path: Path) -> None:
    path = tmp_path / "torn.ckpt"
    path.write_bytes(b"PK\x03\x04 not a whole file")
    with pytest.raises(UnreadableCheckpointError, match=r"torn\.ckpt could not be read"):
        load_method(path)


def test_our_own_checkpoint_loads_with_weights_only(tmp_path: Path) -> None:
    last = pretrain(tiny_pretrain_cfg("simclr", tmp_path, limit_train_batches=1, limit_val_batches=0,
                                      **{"method_kwargs.proj_hidden_dim": 32}))
    stored = torch.load(last, weights_only=False)["state_dict"]  # the reference, trusted here
    model = load_method(last)
    assert stored.keys() == model.state_dict().keys()
    assert all(torch.equal(stored[k], v) for k, v in model.state_dict().items())


def test_cached_zoo_files_get_ordinary_permissions(tmp_path: Path) -> None:
    source = tmp_path / "w.pt"
    source.write_bytes(b"weights")
    sha = hashlib.sha256(b"weights").hexdigest()
    old = os.umask(0o022)
    try:
        path = fetch(str(source), sha, 7, "w.pt", tmp_path / "cache")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # 0666 & ~umask, as any file a user creates


def test_unwritable_cache_names_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "w.pt"
    source.write_bytes(b"weights")
    sha = hashlib.sha256(b"weights").hexdigest()
    cache = tmp_path / "cache"
    cache.mkdir()

    def read_only(*args: object, **kwargs: object) -> None:  # what a read-only folder answers (root ignores chmod)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(atomic, "open", read_only, raising=False)  # the temporary file beside the target
    with pytest.raises(ZooError, match=rf"cannot write to the zoo cache {cache} \(Permission denied\).*--cache"):
        fetch(str(source), sha, 7, "w.pt", cache)
    (tmp_path / "file").write_text("")
    monkeypatch.undo()
    with pytest.raises(ZooError, match=rf"zoo cache {tmp_path / 'file'}"):  # the cache path is a file
        fetch(str(source), sha, 7, "w.pt", tmp_path / "file")
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("text, message", [
    ("{not json", r"is not valid JSON: Expecting property name"),
    ("[]", r"must be a JSON object with a 'models' list, found list"),
    ('{"version": 1}', r"found no 'models' key"),
    ('{"models": {}}', r"found 'models' of type dict"),
    ('{"models": [3]}', r"models\[0\] must be an object, found int"),
    ('{"models": [{"name": "../../x", "method": 1, "dataset": 1, "backbone": 1, "epochs": 1, "config": {}, '
     '"metrics": {}, "metrics_command": "", "url": "", "sha256": "", "size": 1}]}', r"must be a plain file name"),
])
def test_malformed_manifest_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"{path}.*{message}"):
        load_manifest(path)
