"""Where a run computes (mdm.cli.select_devices): every GPU TensorFlow finds, none with
--use_cpu; checked with a stand-in device list, and for real in a fresh process."""

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from cli_helpers import REPO

from mdm import cli


class FakeTfConfig:
    """tf.config's two device calls, over a fixed list of physical GPUs."""

    def __init__(self, gpus):
        self.gpus, self.visible_calls = gpus, []

    def list_physical_devices(self, kind):
        return list(self.gpus) if kind == "GPU" else []

    def set_visible_devices(self, devices, kind):
        self.visible_calls.append((list(devices), kind))


GPU0 = SimpleNamespace(name="/physical_device:GPU:0", device_type="GPU")


def test_a_gpu_present_is_selected():
    tf_config = FakeTfConfig([GPU0])
    assert cli.select_devices(False, tf_config) == [GPU0]
    assert tf_config.visible_calls == []
    assert cli.describe_devices(False, [GPU0]) == "devices: 1 GPU(s): /physical_device:GPU:0"


def test_use_cpu_hides_the_gpus():
    tf_config = FakeTfConfig([GPU0])
    assert cli.select_devices(True, tf_config) == []
    assert tf_config.visible_calls == [([], "GPU")]
    assert cli.describe_devices(True, []) == "devices: CPU only (--use_cpu)"


def test_no_gpu_means_the_cpu():
    tf_config = FakeTfConfig([])
    assert cli.select_devices(False, tf_config) == []
    assert cli.select_devices(True, tf_config) == []
    assert tf_config.visible_calls == []
    assert cli.describe_devices(False, []) == "devices: CPU only (no GPU found)"


# In a fresh process (devices can be hidden only before TensorFlow initialises them):
# how many GPUs exist, how many stay visible after select_devices, and where a tensor lands.
_PLACEMENT = """
import sys
import tensorflow as tf
from mdm import cli
use_cpu = sys.argv[1] == "cpu"
selected = cli.select_devices(use_cpu, tf.config)
print(len(tf.config.list_physical_devices("GPU")), len(tf.config.get_visible_devices("GPU")),
      len(selected), tf.constant([1.0]).device)
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["cpu", "default"])
def test_real_placement(mode):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", _PLACEMENT, mode], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    physical, visible, selected, device = result.stdout.split()
    if mode == "cpu":
        assert (visible, selected) == ("0", "0") and "CPU" in device
    else:  # every GPU found is used, and ops land on the first one
        assert visible == selected == physical
        assert ("GPU:0" in device) if int(physical) else ("CPU" in device)


def test_readme_gpu_install_pins_the_required_tensorflow():
    with open(os.path.join(REPO, "requirements.txt")) as handle:
        pinned = next(line.strip() for line in handle if line.startswith("tensorflow=="))
    with open(os.path.join(REPO, "README.md")) as handle:
        readme = handle.read()
    version = pinned.split("==")[1]
    assert f'pip install -r requirements.txt "tensorflow[and-cuda]=={version}"' in readme
