"""The ground floor: every setting's declaration (`settings`), the schema and its validation (`schema`,
`choices`), the checks run before anything is written (`preflight`), saved configs read with the defaults
they were written against (`defaults_version`, `saved_configs`) and the Hydra registration
(`hydra_schemas`). It imports no method, objective, loader or dataset: those declare themselves to it
through `components.COMPONENTS` (see `solo_equimod.floors`)."""
