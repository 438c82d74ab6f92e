"""Bad configurations fail early with an error that names the key and what is valid."""

from __future__ import annotations

import pytest

from solo_equimod.config.hydra_schemas import register_schemas
from solo_equimod.config.schema import validate
from solo_equimod.errors import ConfigError
from solo_equimod.objectives import METHOD_ALIASES
from solo_equimod.run.training import check_before_reading, pretrain
from tests.conftest import REPO, tiny_pretrain_cfg

# the invariance methods, which every dataset folder has a config for, plain and `_equimod`
INVARIANCE = sorted({*METHOD_ALIASES, *(base for base, _ in METHOD_ALIASES.values())})


def test_shipped_configs_validate():
    """Every shipped pretraining config composes, validates and passes the pre-run checks (Hydra
    composition, no training; DALI configs where DALI is installed)."""
    import importlib.util

    from hydra import compose, initialize_config_dir

    register_schemas()
    for folder in ("cifar", "imagenet", "imagenet-100", "synthetic"):
        path = REPO / "scripts/pretrain" / folder
        with initialize_config_dir(str(path), version_base="1.3"):
            for method in INVARIANCE:  # the `<base>_equimod` configs are <base> + objectives.equimod
                cfg = validate(compose(config_name=method))
                assert cfg.method == method.removesuffix("_equimod") and cfg.name == f"{method}-{cfg.data.dataset}"
                assert list(cfg.objectives) == (["equimod"] if method.endswith("_equimod") else [])
                if cfg.data.format != "dali" or importlib.util.find_spec("nvidia.dali"):
                    check_before_reading(cfg)
    for folder in ("cifar", "stl10", "imagenet", "imagenet-100", "synthetic"):  # and every other config there
        path = REPO / "scripts/pretrain" / folder
        with initialize_config_dir(str(path), version_base="1.3"):
            for config in sorted(p.stem for p in path.glob("*.yaml") if not p.name.startswith("_")):
                cfg = validate(compose(config_name=config))
                assert cfg.name.endswith(f"-{cfg.data.dataset}"), config
                assert [n for n in cfg.objectives if f"_{n}" not in config] == (["transform_prediction"]
                                                                                 if cfg.method == "essl" else []), config


@pytest.mark.parametrize("folder", sorted(p.name for p in (REPO / "scripts/pretrain").iterdir() if p.is_dir()))
def test_every_shipped_config_passes_every_check(folder: str, tmp_path) -> None:
    """Every pretraining config of every folder composes with its settings typed by their
    declarations and passes every check that runs before a run folder is claimed. A config whose
    data path is a documented required value (3DIEBench's root) gets one; nothing else changes."""
    from hydra import compose, initialize_config_dir

    register_schemas()
    path = REPO / "scripts/pretrain" / folder
    configs = sorted(p.stem for p in path.glob("*.yaml") if not p.name.startswith("_"))
    assert configs, folder
    with initialize_config_dir(str(path), version_base="1.3"):
        for config in configs:
            cfg = compose(config_name=config)
            if cfg.data.train_path is None and cfg.data.dataset == "3diebench":
                cfg.data.train_path = str(tmp_path)
            check_before_reading(validate(cfg))


def test_paper_values_in_cifar_configs():
    from hydra import compose, initialize_config_dir

    register_schemas()
    with initialize_config_dir(str(REPO / "scripts/pretrain/cifar"), version_base="1.3"):
        simclr, byol, bt = (compose(config_name=m) for m in ("simclr_equimod", "byol_equimod", "barlow_twins_equimod"))
    assert (simclr.optimizer.batch_size, simclr.optimizer.lr, simclr.optimizer.weight_decay) == (512, 4.0, 1e-6)
    assert simclr.method_kwargs.temperature == 0.5 and simclr.max_epochs == 800
    assert simclr.scheduler.warmup_epochs == 10
    assert (byol.optimizer.lr, byol.method_kwargs.tau_base, byol.method_kwargs.proj_output_dim) == (2.0, 0.996, 256)
    assert (bt.optimizer.lr, bt.optimizer.weight_decay, bt.method_kwargs.lamb) == (1.2, 1.5e-6, 0.005)
    for cfg in (simclr, byol, bt):
        eq = validate(cfg).objectives.equimod
        assert (eq.temperature, eq.weight, eq.proj_output_dim, eq.param_embed_dim) == (0.2, 1.0, 128, 128)
        assert (eq.proj_hidden_dim, eq.loss_variant) == (2048, "paper")


def test_unknown_method_lists_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match="method='simsiam' is unknown; valid: .*byol_equimod"):
        validate(tiny_pretrain_cfg("simsiam", tmp_path))


def test_missing_required_key_is_named(tmp_path):
    cfg = tiny_pretrain_cfg("simclr", tmp_path)
    del cfg.optimizer["lr"]
    with pytest.raises(ConfigError, match="optimizer.lr"):
        validate(cfg)


def test_wrong_type_is_named(tmp_path):
    cfg = tiny_pretrain_cfg("simclr", tmp_path)
    cfg.optimizer.batch_size = "big"
    with pytest.raises(ConfigError, match="optimizer.batch_size"):
        validate(cfg)


def test_unknown_top_level_key_is_named(tmp_path):
    cfg = tiny_pretrain_cfg("simclr", tmp_path)
    cfg.max_epoch = 3
    with pytest.raises(ConfigError, match="max_epoch"):
        validate(cfg)


def test_unknown_method_kwarg_is_named(tmp_path):
    cfg = tiny_pretrain_cfg("byol", tmp_path, **{"method_kwargs.tau": 0.9})
    with pytest.raises(ConfigError, match="method_kwargs.tau is not a setting;.* the settings of method_kwargs are: .*tau"):
        pretrain(cfg)
    assert not (tmp_path / "ckpt").exists()


def test_unknown_equimod_kwarg_and_variant_are_named_before_the_run_folder_exists(tmp_path):
    with pytest.raises(ConfigError, match="objectives.equimod.temp is not a setting;.* the settings of objectives.equimod"):
        pretrain(tiny_pretrain_cfg("simclr_equimod", tmp_path, **{"method_kwargs.equimod": {"temp": 0.1}}))
    with pytest.raises(ConfigError, match="objectives.equimod.loss_variant='both' is invalid: must be one of: paper"):
        pretrain(tiny_pretrain_cfg("simclr", tmp_path, **{"objectives.equimod": {"loss_variant": "both"}}))
    assert not (tmp_path / "ckpt").exists()


def test_missing_dataset_path_is_named(tmp_path):
    cfg = tiny_pretrain_cfg("simclr", tmp_path, **{"data.dataset": "custom", "data.train_path": str(tmp_path / "nope")})
    with pytest.raises(ConfigError, match="data.train_path=.*nope does not exist"):
        pretrain(cfg)


def test_unknown_backbone_and_optimizer_are_named(tmp_path):
    with pytest.raises(ValueError, match="backbone.name='resnet9000'"):
        pretrain(tiny_pretrain_cfg("simclr", tmp_path, **{"backbone.name": "resnet9000", "backbone.kwargs": {}}))
    with pytest.raises(ConfigError, match="data.format='tfrecord' is invalid: must be one of: image_folder, dali, tensor"):
        pretrain(tiny_pretrain_cfg("simclr", tmp_path, **{"data.format": "tfrecord"}))




def test_a_config_saved_with_some_method_kwargs_matches_its_completed_rerun(tmp_path):
    """Configs and checkpoints written before every setting was saved name only the keys they set;
    `auto_resume` compares them completed with the declared defaults, so the run still continues."""
    from omegaconf import OmegaConf

    from solo_equimod.config.saved_configs import pin_saved_config
    from solo_equimod.run.checkpoints import differing_keys

    raw = tiny_pretrain_cfg("simclr", tmp_path, **{"method_kwargs.temperature": 0.3})
    cfg = validate(raw)
    assert set(cfg.method_kwargs) > set(raw.method_kwargs)  # completed: every declared setting written out
    saved = OmegaConf.to_container(cfg, resolve=True)
    saved["method_kwargs"] = OmegaConf.to_container(raw.method_kwargs)  # as saved before
    assert differing_keys(OmegaConf.to_container(pin_saved_config(saved), resolve=True), cfg) == []
    saved["method_kwargs"]["temperature"] = 0.4
    assert differing_keys(OmegaConf.to_container(pin_saved_config(saved), resolve=True), cfg) == ["method_kwargs"]


def test_declared_choices_are_the_implemented_names():
    """The schema's choices (config.choices, on the ground floor) name exactly what the upper floors
    implement, in the order the error messages list them."""
    from solo_equimod.config import choices
    from solo_equimod.data.dataset_info import DATASET_INFO
    from solo_equimod.data.pretrain import FORMAT_INPUTS
    from solo_equimod.data.views3d import GROUPS
    from solo_equimod.optim import OPTIMIZER_CLASSES

    assert tuple(DATASET_INFO) == choices.DATASETS
    assert set(choices.VIEW_DATASETS) | set(choices.FOLDER_DATASETS) <= set(choices.DATASETS)
    assert tuple(FORMAT_INPUTS) == choices.FORMATS
    assert tuple(GROUPS) == choices.GROUPS
    assert tuple(OPTIMIZER_CLASSES) == choices.OPTIMIZERS


def test_importing_the_methods_registers_every_component():
    """The configuration reads methods and objectives only through COMPONENTS: importing the methods
    (as every command does) fills it with the very registries the upper floors use."""
    import solo_equimod.methods
    from solo_equimod.backbones import PINNED_BEFORE
    from solo_equimod.config.components import COMPONENTS
    from solo_equimod.objectives import OBJECTIVES

    components = COMPONENTS.require()
    assert components.methods == solo_equimod.methods.METHODS and components.objectives == OBJECTIVES
    assert components.method_aliases == METHOD_ALIASES and components.backbone_pinned_before == PINNED_BEFORE
    assert sorted(components.checks) == ["augmentations", "backbone", "objectives"]
