"""int8 on a compiled backend: the step graph quantised on the inputs the fp32 graphs give it over
calibration frames (:func:`vpscli.backends.compile_model` with ``calibration``).

The cache entry is named by the calibration sources' fingerprints (:func:`calibration_key`), so the pass
of the fp32 graphs over the frames runs only when the int8 graphs are built; later runs load them at once.
"""

from __future__ import annotations

import hashlib
from itertools import chain, islice

from vpscli.errors import UsageError

#: frames whose step inputs calibrate an int8 graph (NNCF's default subset is 300 samples)
CALIBRATION_FRAMES = 300


def calibration_key(sources) -> str:
    """What names a calibration set in the cache: :data:`CALIBRATION_FRAMES` and each source's fingerprint
    (:func:`~vpscli.io.fingerprint.source_fingerprint`, in order): other frames make another entry."""
    from vpscli.io.fingerprint import source_fingerprint

    digest = hashlib.sha256(f"frames={CALIBRATION_FRAMES}".encode())
    for source in sources:
        digest.update(b"\0" + source_fingerprint(source).encode())
    return f"sources:{digest.hexdigest()}"


def calibrated_int8(segmenter, net, cache_dir, calibration):
    """``net`` quantised to int8 for ``segmenter``'s backend, calibrated on the first
    :data:`CALIBRATION_FRAMES` frames of ``calibration`` (any ``vps segment`` input; each video from its
    first frame, one after another) run through the fp32 graphs with ``segmenter``'s own windows — only
    when no int8 graphs for those sources are cached."""
    from vpscli.backends import compile_model
    from vpscli.io.sources import discover_sources

    assert calibration is not None  # choose_backend refused int8 without it
    sources = discover_sources([str(calibration)])
    if not sources:
        raise UsageError(f"--calibration {calibration}: no video or frames found there")
    sha = segmenter.loaded.weights_sha256

    def record() -> list:
        fp32 = compile_model(
            net, segmenter.backend, weights_sha256=sha, cache_dir=cache_dir, on_convert=segmenter.on_convert
        )
        samples: list = []
        fp32.input_hook = samples.append
        segmenter.model, segmenter._forward = fp32, fp32
        for _ in islice(chain.from_iterable(segmenter.run(s) for s in sources), CALIBRATION_FRAMES):
            pass
        return samples

    return compile_model(
        net,
        segmenter.backend,
        precision="int8",
        weights_sha256=sha,
        cache_dir=cache_dir,
        calibration=record,
        calibration_key=calibration_key(sources),
        on_convert=segmenter.on_convert,
    )
