"""int8 on a compiled backend: the fp32 graphs run over calibration frames, their step inputs recorded,
and the step graph quantised on them (:func:`vpscli.backends.compile_model` with ``calibration``)."""

from __future__ import annotations

from itertools import chain, islice

from vpscli.errors import UsageError

#: frames whose step inputs calibrate an int8 graph (NNCF's default subset is 300 samples)
CALIBRATION_FRAMES = 300


def calibrated_int8(segmenter, net, cache_dir, calibration):
    """``net`` quantised to int8 for ``segmenter``'s backend, calibrated on the first
    :data:`CALIBRATION_FRAMES` frames of ``calibration`` (any ``vps segment`` input; each video from its
    first frame, one after another) run through the fp32 graphs with ``segmenter``'s own windows."""
    from vpscli.backends import compile_model
    from vpscli.io.sources import discover_sources

    assert calibration is not None  # choose_backend refused int8 without it
    sources = discover_sources([str(calibration)])
    if not sources:
        raise UsageError(f"--calibration {calibration}: no video or frames found there")
    sha = segmenter.loaded.weights_sha256
    fp32 = compile_model(net, segmenter.backend, weights_sha256=sha, cache_dir=cache_dir)
    samples: list = []
    fp32.input_hook = samples.append
    segmenter.model, segmenter._forward = fp32, fp32
    for _ in islice(chain.from_iterable(segmenter.run(s) for s in sources), CALIBRATION_FRAMES):
        pass
    return compile_model(
        net, segmenter.backend, precision="int8", weights_sha256=sha, cache_dir=cache_dir, calibration=samples
    )
