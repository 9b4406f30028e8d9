"""Ctrl-C during training (mdm.train.interruption): the first press is taken at the next
batch end, or after the epoch end's checkpoint and evaluation; a second press interrupts
at once; an ignored SIGINT stays ignored. The presses are real SIGINTs."""

import json
import signal

import pytest
from ctrl_c_helpers import press_ctrl_c, sigint_handled_by
from training_helpers import tiny_config

from mdm.checkpoint import store as checkpoint_store
from mdm.core import faults
from mdm.train import interruption
from mdm.train import loop as training_loop

STEPS_PER_EPOCH = 10  # training_helpers.tiny_config


def test_first_press_is_recorded_and_raised_on_leaving():
    with sigint_handled_by(signal.default_int_handler):
        with pytest.raises(KeyboardInterrupt):
            with interruption.ctrl_c_at_batch_end() as ctrl_c:
                press_ctrl_c()
                assert ctrl_c.requested
                with pytest.raises(KeyboardInterrupt):
                    ctrl_c.on_train_batch_end(0)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_second_press_interrupts_at_once():
    with sigint_handled_by(signal.default_int_handler):
        with pytest.raises(KeyboardInterrupt):
            with interruption.ctrl_c_at_batch_end():
                press_ctrl_c()
                press_ctrl_c()
                pytest.fail("the second Ctrl-C did not interrupt")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_no_press_changes_nothing():
    with sigint_handled_by(signal.default_int_handler):
        with interruption.ctrl_c_at_batch_end() as ctrl_c:
            ctrl_c.on_train_batch_end(0)
            ctrl_c.on_epoch_end(0)
        assert not ctrl_c.requested


def test_an_ignored_sigint_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interruption.ctrl_c_at_batch_end() as ctrl_c:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            press_ctrl_c()
        assert not ctrl_c.requested
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("fault", [
    f"batch:{STEPS_PER_EPOCH + 3}:INT",  # mid-epoch 2: stops after that batch
    "evaluation:1:INT",  # epoch 1 saved, not yet evaluated: its evaluation still finishes
])
def test_training_stops_where_the_press_is_taken(synthetic_h36m, tmp_path, monkeypatch,
                                                 caplog, fault):
    monkeypatch.setenv(faults.ENV_VAR, fault)
    monkeypatch.setattr(faults._Counter, "counts", {})  # pylint: disable=protected-access
    config = tiny_config(synthetic_h36m(8, 2), tmp_path, epochs=3)
    with sigint_handled_by(signal.default_int_handler), pytest.raises(KeyboardInterrupt):
        training_loop.train(config)
    assert checkpoint_store.available_steps(str(tmp_path)) == [STEPS_PER_EPOCH]
    with open(tmp_path / "results.json", encoding="utf-8") as handle:
        assert json.load(handle)["metadata"]["step"] == STEPS_PER_EPOCH
    assert [record.message for record in caplog.records if "Ctrl-C" in record.message] == [
        "Ctrl-C: stopping at the next batch end; press again to stop at once"]
