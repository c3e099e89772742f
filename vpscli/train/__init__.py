"""``vps train``: training the model zoo from scratch (or fine-tuning) on polyp videos and stills.

One concept per module:

- :mod:`~vpscli.train.config` — :class:`TrainConfig`, every option of a run (default, help, flag, check);
- :mod:`~vpscli.train.sources` — data folders (videos, stills, negatives, synthetic clips);
- :mod:`~vpscli.train.windows` — how each model is fed during training (CFFM refs, AEN memory, PNS+ anchor);
- :mod:`~vpscli.train.store` — the data decoded once, cached, kept on the training device;
- :mod:`~vpscli.train.augment` — whole-clip-consistent augmentation on the device; per-frame motion for stills;
- :mod:`~vpscli.train.dataset` — epochs of samples as index arithmetic on the store, made in batches;
- :mod:`~vpscli.train.loss` — 5·BCE + 2·Dice;
- :mod:`~vpscli.train.schedule` — warm-up + poly learning rate;
- :mod:`~vpscli.train.step` — one optimiser step;
- :mod:`~vpscli.train.finetune` — a pretrained backbone's learning rate and frozen BatchNorm statistics;
- :mod:`~vpscli.train.snapshot` — resumable snapshots;
- :mod:`~vpscli.train.validate` — validation with the ``vps evaluate`` metrics;
- :mod:`~vpscli.train.log` — ``log.csv`` and ``curves.png``;
- :mod:`~vpscli.train.progress` — progress callbacks and the losses of each log row;
- :mod:`~vpscli.train.start` — a run started: data read, model and optimiser built, snapshot restored;
- :mod:`~vpscli.train.outputs` — what a run writes as it goes: snapshots, last/best weights, curves;
- :mod:`~vpscli.train.loop` — :func:`train`, the whole run.

Typical use::

    from vpscli.train import TrainConfig, train
    result = train(TrainConfig(model="pns-plus", data=["data/cvc-clinicdb/train"],
                               val=["data/cvc-clinicdb/valid"], out="runs/pns", epochs=20))
"""

from vpscli.train.config import TrainConfig

__all__ = ["TrainConfig", "TrainResult", "train"]


def __getattr__(name: str):
    # The run needs torch, its options do not: ``vps train`` builds its flags from TrainConfig
    # without loading torch, so the loop is imported on first use.
    if name in ("TrainResult", "train"):
        from vpscli.train import loop

        return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
