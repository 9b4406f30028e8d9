"""The tiny training setting the training-loop and warm-start tests share."""

from mdm.core.config import Config


def tiny_config(data_dir, train_dir, **overrides):
    """10 steps of 32 per epoch (320 Walking samples of the 8-frame synthetic set)."""
    values = dict(data_dir=data_dir, train_dir=str(train_dir), linear_size=24, num_layers=1,
                  batch_size=32, epochs=2, verbose=0, jit_compile=False, seed=7,
                  action="Walking")
    values.update(overrides)
    return Config(**values)
