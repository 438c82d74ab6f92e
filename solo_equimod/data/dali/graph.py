"""The DALI graph of pretraining: decode the fed files, make every view (and the original) from the
parameters fed with them (`solo_equimod.augment.dali_ops`), pass the indexes and parameters through."""

from __future__ import annotations

from typing import TYPE_CHECKING

from solo_equimod.data.dali.feeder import PREFETCH, Feeder, PipelineSpec

if TYPE_CHECKING:
    from nvidia.dali.pipeline import Pipeline


def build_pipeline(spec: PipelineSpec, feeder: Feeder) -> "Pipeline":
    from nvidia.dali import fn, pipeline_def, types

    from solo_equimod.augment.dali_ops import make_original, make_view

    @pipeline_def(enable_conditionals=True)
    def pretrain_pipeline():  # type: ignore[no-untyped-def]
        sources = fn.external_source(source=feeder, num_outputs=len(feeder.names), batch=True, cycle="raise")
        fed = dict(zip(feeder.names, sources))
        decoder_device = "mixed" if spec.device == "gpu" else "cpu"
        # no EXIF rotation: torchvision's ImageFolder (PIL) does not apply it either
        image = fn.decoders.image(fed["encoded"], device=decoder_device, output_type=types.RGB, adjust_orientation=False)
        views, params = [], []
        for v, policy in enumerate(spec.policies):
            feed = {name.removeprefix(f"view{v}_"): node for name, node in fed.items() if name.startswith(f"view{v}_")}
            views.append(make_view(image, policy, feed, spec.mean, spec.std, spec.device == "gpu"))
            params.append(feed["params"])
        if not spec.with_original:
            return (fed["index"], *views, *params)
        original_feed = {name.removeprefix("original_"): node for name, node in fed.items() if name.startswith("original_")}
        original = make_original(image, spec.original, original_feed)
        return (fed["index"], *views, *params, original)

    pipe = pretrain_pipeline(
        batch_size=spec.batch_size, num_threads=spec.num_threads, device_id=spec.device_id,
        seed=0, prefetch_queue_depth=PREFETCH,
    )
    pipe.build()
    return pipe
