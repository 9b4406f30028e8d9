"""Mixture density network for multiple-hypothesis 3D human pose estimation.

A TensorFlow 2 / Keras 3 reproduction of Li & Lee, "Generating Multiple Hypotheses
for 3D Human Pose Estimation with Mixture Density Network" (CVPR 2019).
"""

__version__ = "0.1.0"
