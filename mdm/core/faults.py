"""Fault injection for the reliability tests: lets a test kill training at a named point.

Set MDM_FAULT_INJECTION="<point>:<n>" and the process sends itself SIGKILL the n-th time
it reaches `point(<point>)`; "<point>:<n>:INT" sends SIGINT instead (a Ctrl-C). Points:
"batch" (after a training step), "evaluation" (inside the per-epoch evaluation),
"checkpoint_written" (checkpoint files written, state file not yet updated). Unset, every
call is a no-op.
"""

import os
import signal

ENV_VAR = "MDM_FAULT_INJECTION"


class _Counter:
    counts = {}


def point(name):
    spec = os.environ.get(ENV_VAR, "")
    if not spec:
        return
    target, _, rest = spec.partition(":")
    if target != name:
        return
    count, _, signal_name = rest.partition(":")
    _Counter.counts[name] = _Counter.counts.get(name, 0) + 1
    if _Counter.counts[name] == int(count or 1):
        os.kill(os.getpid(), signal.Signals[f"SIG{signal_name or 'KILL'}"])
