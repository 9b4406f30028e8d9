"""Mixture density network for multiple-hypothesis 3D human pose estimation.

A TensorFlow 2 / Keras 3 reproduction of Li & Lee, "Generating Multiple Hypotheses
for 3D Human Pose Estimation with Mixture Density Network" (CVPR 2019).
"""

__version__ = "0.1.0"

_LAZY = {"Lifter": "mdm.serve.lifter", "Hypotheses": "mdm.serve.lifter"}


def __getattr__(name):
    """`mdm.Lifter` without importing TensorFlow when the package is imported (PEP 562)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mdm' has no attribute {name!r}")
