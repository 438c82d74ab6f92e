"""The 3D factor bench: an offline, procedural stand-in for 3DIEBench in the same layout.

Small 3D objects of a few classes (coloured point-sampled surfaces: cube, pyramid, torus, cylinder,
L-block, arrow; each object with its own proportions and part colours) rendered with a numpy
z-buffer under TRUE 3D rotations (extrinsic xyz Euler angles, each uniform in (-pi/2, pi/2)), over a
floor/wall background of hue `floor_hue`, Lambert-shaded by a light from direction (spot_theta,
spot_phi) of hue `spot_hue`: the 7 latents of 3DIEBench, drawn as its data README says. Everything
is seeded by (seed, split, object, view), so `data.dataset: factors3d` renders on the fly without
files, and

    python -m solo_equimod.data.factors3d OUT_DIR [--objects-per-class N] [--views V] [--size S] [--overwrite]

writes it (into a new or empty folder; `--overwrite` to replace files of the same names) in
3DIEBench's layout (`<synset>/<object>/image_k.jpg`, `latent_k.npy`,
`train_images.npy`, `val_images.npy`, `all_latents_{train,val}.npy`) for `data.dataset: 3diebench`.
3DIEBench itself is 17 GB of Blender renderings; this renders 32 px images in about a millisecond.
"""

from solo_equimod.data.factors3d.dataset import IMAGE_SIZE, NUM_VIEWS, OBJECTS_PER_CLASS, Factors3D
from solo_equimod.data.factors3d.layout import write_layout
from solo_equimod.data.factors3d.render import SHAPES, draw_latents, render

__all__ = ["IMAGE_SIZE", "NUM_VIEWS", "OBJECTS_PER_CLASS", "SHAPES", "Factors3D", "draw_latents", "render",
           "write_layout"]
