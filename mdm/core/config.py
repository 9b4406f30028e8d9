"""The one configuration object built from the command line and passed down.

Field names follow the release's flags (docs/faithfulness.md §6) so that a reader can map each
one back. `ARCHITECTURE_FIELDS` are the ones a checkpoint cannot be used without.
"""

import dataclasses
import json
import os

from mdm.core.atomic import atomic_write
from mdm.core.errors import UserError

ARCHITECTURE_FIELDS = (
    "linear_size", "num_layers", "num_models", "predict_14", "residual", "batch_norm",
    "max_norm",
)


@dataclasses.dataclass
class Config:
    # Optimisation (docs/faithfulness.md §2).
    learning_rate: float = 1e-3
    dropout: float = 0.5  # keep probability, as in the release
    batch_size: int = 64
    epochs: int = 200
    # Data (docs/faithfulness.md §1).
    camera_frame: bool = True
    use_sh: bool = True
    sh_dir: str = ""  # "" = StackedHourglassFineTuned240 if present, else StackedHourglass
    action: str = "All"
    data_dir: str = "data/synthetic"
    cameras_path: str = ""  # "" = <data_dir>/cameras.h5
    cache_dir: str = ""  # "" = <train_dir>/cache
    train_subjects: tuple = (1, 5, 6, 7, 8)
    test_subjects: tuple = (9, 11)
    miss_num: int = 0
    # Network (docs/faithfulness.md §2).
    linear_size: int = 1024
    num_layers: int = 2
    residual: bool = True
    batch_norm: bool = True
    max_norm: bool = True
    predict_14: bool = False
    num_models: int = 5
    dirichlet_prior: bool = True
    use_fp16: bool = False
    jit_compile: bool = False  # XLA measured slower on a 2-core CPU (README, Performance)
    steps_per_execution: int = 1  # training steps per compiled call (fewer host round trips)
    distribute: str = ""  # "", "mirrored" (one machine, all GPUs) or "multi_worker"
    # Evaluation (docs/faithfulness.md §3).
    procrustes: bool = False
    evaluate_action_wise: bool = True
    # Run control.
    train_dir: str = "experiments/mdm"
    load_dir: str = ""
    load: int = 0
    test: bool = False
    sample: bool = False
    sample_figures: int = 20
    use_cpu: bool = False
    seed: int = 42
    verbose: int = 1
    max_to_keep: int = 5
    # MPI-INF-3DHP (docs/faithfulness.md §8): which dataset, its preprocessed npz files, and the
    # 2D statistics of the cross-dataset test ("checkpoint", "mpi" or "both").
    dataset: str = "h36m"
    mpi_train_npz: str = ""
    mpi_test_npz: str = ""
    mpi_norm_stats: str = "both"

    def resolved_cameras_path(self):
        return self.cameras_path or os.path.join(self.data_dir, "cameras.h5")

    def resolved_cache_dir(self):
        return self.cache_dir or os.path.join(self.train_dir, "cache")

    def architecture(self):
        return {name: getattr(self, name) for name in ARCHITECTURE_FIELDS}

    def validate(self):
        """Reject values that cannot work, with one line naming the flag."""
        if not 0 <= self.miss_num <= 2:
            raise UserError(f"--miss_num must be 0, 1 or 2 (got {self.miss_num})")
        if not 0.0 < self.dropout <= 1.0:
            raise UserError(f"--dropout is a keep probability in (0, 1] (got {self.dropout})")
        positive = ("batch_size", "epochs", "linear_size", "num_models", "steps_per_execution")
        for name in positive:
            if getattr(self, name) < 1:
                raise UserError(f"--{name} must be at least 1 (got {getattr(self, name)})")
        if self.num_layers < 0:
            raise UserError(f"--num_layers must be >= 0 (got {self.num_layers})")
        if self.learning_rate <= 0:
            raise UserError(f"--learning_rate must be positive (got {self.learning_rate})")
        if self.distribute not in ("", "mirrored", "multi_worker"):
            raise UserError(f"--distribute must be mirrored or multi_worker "
                            f"(got '{self.distribute}')")
        overlap = set(self.train_subjects) & set(self.test_subjects)
        if overlap and not self.test:
            raise UserError(f"subjects {sorted(overlap)} are in both the train and test split")


def save_architecture(path, config):
    """Write the architecture flags next to the checkpoints (atomically)."""
    # miss_num is recorded too (inference warns when a model never saw missing joints),
    # but it is not an architecture flag: testing with another value is legitimate.
    with atomic_write(path) as handle:
        json.dump(dict(config.architecture(), miss_num=config.miss_num), handle, indent=2)


def load_architecture(path):
    with open(path) as handle:
        return json.load(handle)
