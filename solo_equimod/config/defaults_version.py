"""The version of the defaults a config is written against, saved in every run's config.

2: the official EquiMod code's heads (joint BatchNorm batches, parameter encoder with BN,
affine-free last BNs) and zero-initialised residual BNs became the defaults (README "Recipes").
A saved config without the key is version 1; `saved_configs.pin_saved_config` reads it as such.
"""

CONFIG_VERSION = 2
