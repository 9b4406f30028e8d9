"""The one configuration object built from the command line and passed down.

Field names follow the release's flags (docs/faithfulness.md §6) so that a reader can map each
one back. `ARCHITECTURE_FIELDS` are the ones a checkpoint cannot be used without.
"""

import dataclasses
import json
import os

from mdm.core.atomic import atomic_write
from mdm.core.errors import UserError
from mdm.core import options
from mdm.core.options import option

# The release's data directory (docs/faithfulness.md §6).
RELEASE_DATA_DIR = "../data/h36m/"
ARCHITECTURE_FIELDS = (
    "linear_size", "num_layers", "num_models", "predict_14", "residual", "batch_norm",
    "max_norm", "remove_pre_bn_bias",
)


@dataclasses.dataclass
class Config:
    """Every option of a run. Each field is also a command-line flag: `option` records its
    flag name, help text and valid range (mdm.core.options), from which mdm.cli defines
    the absl flags and `validate` checks the values."""

    # Optimisation (docs/faithfulness.md §2).
    learning_rate: float = option(1e-3, "Learning rate", above=0)
    dropout: float = option(0.5, "Dropout keep probability. 1 means no dropout", above=0,
                            at_most=1, note="a keep probability, 1 = no dropout")
    batch_size: int = option(64, "Batch size to use during training", at_least=1)
    epochs: int = option(200, "How many epochs we should train for", at_least=1)
    # Data (docs/faithfulness.md §1).
    camera_frame: bool = option(True, "Convert 3d poses to camera coordinates")
    use_sh: bool = option(True, "Use 2d pose predictions from StackedHourglass")
    sh_dir: str = option("", "Detection folder under S<n>/ (default: "
                         "StackedHourglassFineTuned240 if present, else StackedHourglass)")
    action: str = option("All", "The action to train on. 'All' means all the actions")
    # The flag keeps the release's default; when that folder does not exist the entry
    # script falls back to this field's default, the synthetic set (docs/faithfulness.md §10).
    data_dir: str = option("data/synthetic", "Data directory (3d-pose-baseline layout); "
                           f"when left at {RELEASE_DATA_DIR} and that is absent, the "
                           "built-in synthetic set in data/synthetic",
                           flag_default=RELEASE_DATA_DIR)
    cameras_path: str = option("", "cameras.h5 (default: <data_dir>/cameras.h5)")
    cache_dir: str = option("", "Where prepared data is cached (default: <train_dir>/cache)")
    train_subjects: tuple = option((1, 5, 6, 7, 8), "Training subjects")
    test_subjects: tuple = option((9, 11), "Test subjects (\"\" when training: no "
                                  "per-epoch evaluation)")
    # The release's default was 1 but its corruption call was commented out, so it trained
    # without missing joints; 0 keeps that behaviour now that the flag works
    # (docs/faithfulness.md §4, §10).
    miss_num: int = option(0, "Limb joints to drop per sample", choices=(0, 1, 2))
    # Network (docs/faithfulness.md §2).
    linear_size: int = option(1024, "Size of each model layer.", at_least=1)
    num_layers: int = option(2, "Number of residual blocks in the model.", at_least=0)
    residual: bool = option(True, "Whether to add a residual connection every 2 layers")
    batch_norm: bool = option(True, "Use batch_normalization")
    max_norm: bool = option(True, "Apply maxnorm constraint to the weights")
    # Off: the release's layers. On: no bias in the linear layers that feed batch norm,
    # whose gradient is only rounding noise (docs/faithfulness.md §11).
    remove_pre_bn_bias: bool = option(False, "Leave out the bias of every linear layer "
                                      "followed by batch norm (batch norm's beta is the "
                                      "offset); the release had it")
    predict_14: bool = option(False, "predict 14 joints")
    num_models: int = option(5, "K, the number of Gaussian kernels / hypotheses", at_least=1)
    dirichlet_prior: bool = option(True, "Add the Dirichlet prior on the mixing weights")
    use_fp16: bool = option(False, "Train with mixed precision (float16); the release's "
                            "flag, the same as --precision mixed_float16")
    # bfloat16 has float32's exponent range, so it needs no loss scaling; CPUs with AMX or
    # AVX512_BF16 run its matrix products faster (README, Performance).
    precision: str = option("float32", "Compute dtype of the hidden layers: float32, or "
                            "mixed precision (bfloat16/float16 products, float32 variables, "
                            "heads, loss and max-norm)",
                            choices=("float32", "mixed_bfloat16", "mixed_float16"))
    # XLA measured slower on a 2-core CPU (README, Performance), so it is opt-in.
    jit_compile: bool = option(False, "Compile the train and inference steps with XLA")
    steps_per_execution: int = option(1, "Training steps per compiled call: fewer host round "
                                      "trips; callbacks and the progress bar see every n-th "
                                      "step", at_least=1)
    distribute: str = option("", "tf.distribute: mirrored (this machine's GPUs) or "
                             "multi_worker (TF_CONFIG); --batch_size stays the global batch",
                             choices=("", "mirrored", "multi_worker"))
    # Evaluation (docs/faithfulness.md §3).
    procrustes: bool = option(False, "Apply procrustes analysis at test time")
    evaluate_action_wise: bool = option(True, "Evaluate per action, averaged",
                                        flag="evaluateActionWise")
    uncertainty: bool = option(False, "With --test: also measure the mixture as a "
                               "distribution (NLL, best of N samples, calibration)")
    # mdm/checkpoint/recalibration.py: factors fitted on held-out subjects (mdm.calibrate).
    recalibrate: bool = option(True, "With --uncertainty: apply the recalibration.json next "
                               "to the checkpoint when it was fitted for the loaded step "
                               "(False: the network's raw spread)")
    # Run control. The directories default inside this repository (docs/faithfulness.md §10).
    train_dir: str = option("experiments/mdm", "Training directory: checkpoints, log, "
                            "summaries, results")
    load_dir: str = option("", "Directory of the checkpoint for --test/--sample "
                           "(default: --train_dir); when training into a --train_dir "
                           "without checkpoints, the run starts from this directory's")
    load: int = option(0, "Global step of the checkpoint to load (0 = latest)", at_least=0)
    # Training from another directory's checkpoint (mdm/checkpoint/warm_start.py).
    fresh_optimizer: bool = option(False, "When training starts from --load_dir's "
                                   "checkpoint: its weights only, a fresh Adam at step 0 "
                                   "(default: also its Adam state, step and epoch)")
    test: bool = option(False, "Evaluate a checkpoint")
    sample: bool = option(False, "Draw the hypotheses of test frames")
    sample_figures: int = option(20, "Figures per test sequence and camera in --sample",
                                 at_least=1)
    use_cpu: bool = option(False, "Whether to use the CPU (hide the GPUs)")
    # numpy's seeds are unsigned 32-bit integers.
    seed: int = option(42, "Seed of initialisation, shuffling, dropout and miss_num",
                       at_least=0, at_most=2**32 - 1)
    verbose: int = option(1, "Keras progress output: 0 silent, 1 bar, 2 line/epoch "
                          "(default: 1 on a terminal, else 2)", choices=(0, 1, 2))
    # mdm.checkpoint.store keeps every checkpoint for 0; a negative count would delete
    # the one just written.
    max_to_keep: int = option(5, "Checkpoints kept in train_dir (oldest deleted)",
                              at_least=0, note="0 keeps all")
    # MPI-INF-3DHP (docs/faithfulness.md §8): which dataset, its preprocessed npz files, and
    # the 2D statistics of the cross-dataset test.
    dataset: str = option("h36m", "Train and test on Human3.6M (data_dir) or on the "
                          "MPI-INF-3DHP npz files", choices=("h36m", "mpi_inf_3dhp"))
    mpi_train_npz: str = option("", "MPI-INF-3DHP training npz "
                                "(python preprocessing.py --mode train)")
    mpi_test_npz: str = option("", "MPI-INF-3DHP test npz (python preprocessing.py --mode test)")
    mpi_norm_stats: str = option("both", "2D normalisation in the MPI-INF-3DHP test: the "
                                 "checkpoint's training statistics, those of the MPI 2D input "
                                 "itself (the release), or both",
                                 choices=("checkpoint", "mpi", "both"))

    def resolved_cameras_path(self):
        return self.cameras_path or os.path.join(self.data_dir, "cameras.h5")

    def resolved_cache_dir(self):
        return self.cache_dir or os.path.join(self.train_dir, "cache")

    def compute_policy(self):
        """The Keras dtype policy of the hidden layers (--precision, or --use_fp16)."""
        return "mixed_float16" if self.use_fp16 else self.precision

    def architecture(self):
        return {name: getattr(self, name) for name in ARCHITECTURE_FIELDS}

    def validate(self):
        """Reject values that cannot work: a UserError with one line per problem, each
        naming its flag (the ranges are those declared with each field)."""
        problems = options.violations(self)
        overlap = set(self.train_subjects) & set(self.test_subjects)
        if overlap and not self.test:
            problems.append(f"subjects {sorted(overlap)} are in both the train and test split")
        if self.use_fp16 and self.precision not in ("float32", "mixed_float16"):
            problems.append(f"--use_fp16 contradicts --precision {self.precision}")
        if not self.test_subjects and (self.test or self.sample):
            problems.append("--test_subjects is empty: name the subjects to test on")
        if problems:
            raise UserError("\n".join(problems))


def save_architecture(path, config):
    """Write the architecture flags next to the checkpoints (atomically)."""
    # miss_num is recorded too (inference warns when a model never saw missing joints),
    # but it is not an architecture flag: testing with another value is legitimate.
    with atomic_write(path) as handle:
        json.dump(dict(config.architecture(), miss_num=config.miss_num), handle, indent=2)


def load_architecture(path):
    with open(path) as handle:
        return json.load(handle)
