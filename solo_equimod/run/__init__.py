"""The life of a run: the training entry (`training`), its run folder (`run_dir`), checkpoints
(`checkpoints`, written through `atomic`, read through `safe_load`), Lightning callbacks (`callbacks`,
`progress`), the speed settings (`speed`) and the process's malloc settings (`malloc`, applied by the
command-line entry points before torch is imported, so this package imports nothing on its own)."""
