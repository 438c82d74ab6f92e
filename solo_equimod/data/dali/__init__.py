"""NVIDIA DALI pretraining loading (`data.format: dali`): ImageFolder -> named `Batch`es.

`guard.py` says how to install DALI when it is missing, `files.py` lists the ImageFolder and checks
file headers, `feeder.py` feeds files, indexes and drawn parameters to the pipeline, `graph.py` builds
the DALI graph, `loader.py` runs epochs and recovers from decode failures, `build.py` is the factory
(`build_dali_pretrain_loader`). Importing any of them does not need DALI; building a loader does.
"""
