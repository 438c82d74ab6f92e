"""Model zoo: a manifest of the checkpoints this project trained, their download into a cache
(atomic, sha256-verified, offline once cached), export of new entries, and loading.

    from solo_equimod.zoo import load_pretrained
    model = load_pretrained("simclr_equimod-synthetic")  # or a checkpoint path
    feats = model.backbone(images)
"""

from solo_equimod.zoo.fetch import ZooError, cache_dir, fetch, sha256_of
from solo_equimod.zoo.load import Pretrained, load_pretrained
from solo_equimod.zoo.manifest import ZooEntry, default_manifest_path, load_manifest

__all__ = ["Pretrained", "ZooEntry", "ZooError", "cache_dir", "default_manifest_path", "fetch", "load_manifest",
           "load_pretrained", "sha256_of"]
