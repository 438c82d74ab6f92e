"""The names the schema accepts for the settings whose implementations live on upper floors: the
dataset builders (`data.datasets.DATASET_INFO`), the loaders (`data.pretrain.FORMAT_INPUTS`), the 3D
groups (`data.views3d.GROUPS`) and the optimisers (`optim.OPTIMIZER_CLASSES`) are keyed by these names,
which tests/config/test_schema.py checks, so a name is declared here once and implemented there."""

DATASETS: tuple[str, ...] = (
    "cifar10", "cifar100", "stl10", "imagenet", "imagenet100", "custom", "synthetic", "3diebench", "factors3d",
)
# datasets of objects in many renderings with known latents: their views are renderings, their params group elements
VIEW_DATASETS: tuple[str, ...] = ("3diebench", "factors3d")
# datasets read from an image folder (one sub-folder of images per class)
FOLDER_DATASETS: tuple[str, ...] = ("imagenet", "imagenet100", "custom")
FORMATS: tuple[str, ...] = ("image_folder", "dali", "tensor")
GROUPS: tuple[str, ...] = ("rot", "rotcolor", "all")
OPTIMIZERS: tuple[str, ...] = ("lars", "sgd", "adam", "adamw")
SCHEDULERS: tuple[str, ...] = ("warmup_cosine", "none")
