"""Ctrl-C during training, taken at the next batch or epoch end.

Python raises KeyboardInterrupt in whatever Python code runs when SIGINT arrives. In a
training step that is often Python called back from TensorFlow's C++, which may turn it
into another error, or a finalizer (`__del__`) of a dataset iterator or tensor, where
Python prints "Exception ignored in ..." and drops it: training then goes on as if no
key had been pressed. So while the epochs run, the first Ctrl-C only records the request
and the training loop raises KeyboardInterrupt itself, from a Keras callback, at the next
batch end, or after the epoch end's checkpoint and evaluation. A second Ctrl-C
interrupts at once, as Python would.
"""

import contextlib
import logging

import keras

from mdm.core import sigint

LOG = logging.getLogger(__name__)


class Interruption(keras.callbacks.Callback):
    """Raises KeyboardInterrupt at a batch or epoch end once `requested`.

    Give it to fit() after the callback that saves, so an epoch that ended is kept.
    """

    def __init__(self):
        super().__init__()
        self.requested = False

    def on_train_batch_end(self, batch, logs=None):
        self.raise_if_requested()

    def on_epoch_end(self, epoch, logs=None):
        self.raise_if_requested()

    def raise_if_requested(self):
        if self.requested:
            raise KeyboardInterrupt


@contextlib.contextmanager
def ctrl_c_at_batch_end():
    """While inside, Ctrl-C sets the yielded Interruption's `requested` instead of
    raising; one still pending on leaving is raised then. Where SIGINT is not Python's
    to take (mdm.core.sigint), nothing changes.
    """
    interruption = Interruption()

    def wrap(previous):
        def request_stop(signum, frame):
            if interruption.requested:
                previous(signum, frame)  # the second Ctrl-C: as without this handler
                return
            interruption.requested = True
            LOG.warning("Ctrl-C: stopping at the next batch end; press again to stop at once")
        return request_stop

    with sigint.sigint_wrapped(wrap):
        yield interruption
    interruption.raise_if_requested()
