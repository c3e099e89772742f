"""Procedural colonoscopy-like clips with exact ground truth.

A clip is rendered from a fixed "world": a pinkish mucosa texture with folds and
vessels, and polyps that live in that world. A camera looks at the world with drift,
zoom and a little roll; polyps move on their own and change size and shape. Each
frame is composed in layers so that the ground truth is exact: the mask is the set of
pixels whose colour came from a polyp layer.

Layers, in order: mucosa (motion-blurred) → polyps composited with their hard masks
(each polyp layer blurred on its own, so blur never bleeds a polyp colour outside its
mask) → specular highlights → vignetting → sensor noise → black endoscope corners →
burned-in text. Highlights, vignetting and noise change colours but not which layer a
pixel came from; corners and text hide pixels, so they are removed from the mask.

Deterministic per seed: every random choice comes from generators spawned from
``numpy.random.SeedSequence(seed)``, one per component, so adding a polyp does not
change the mucosa, and a clip rendered with ``draw_polyps=False`` is the same clip with
the polyps left out (that is how the tests check the masks).
"""

from vpscli.synth.clip import SynthConfig, SynthOutput, render_clip, write_clip

__all__ = ["SynthConfig", "SynthOutput", "render_clip", "write_clip"]
