"""mdm.cli.exit_on_user_error in-process: the exit status and the one stderr line for each
way a command ends, including a Ctrl-C that TensorFlow's C++ turned into another error."""

import signal

import pytest
from ctrl_c_helpers import press_ctrl_c, sigint_handled_by

from mdm.cli import exit_on_user_error
from mdm.core.errors import UserError


def ctrl_c_then(error):
    """A run whose Ctrl-C is swallowed by a lower layer that then fails with `error`."""
    def run():
        try:
            press_ctrl_c()
        except KeyboardInterrupt:
            pass
        raise error
    return run


def raising(error):
    def run():
        raise error
    return run


def test_returns_0_when_the_run_returns():
    assert exit_on_user_error(lambda: None) == 0


def test_user_error_is_one_line_and_status_1(capsys):
    assert exit_on_user_error(raising(UserError("no checkpoint in /x"))) == 1
    assert capsys.readouterr().err == "error: no checkpoint in /x\n"


def test_os_error_names_the_file(capsys):
    def run():
        open("/nonexistent-dir/file", encoding="utf-8")
    assert exit_on_user_error(run) == 1
    assert capsys.readouterr().err == "error: No such file or directory: /nonexistent-dir/file\n"


def test_ctrl_c_is_status_130_with_the_detail(capsys):
    with sigint_handled_by(signal.default_int_handler):
        status = exit_on_user_error(press_ctrl_c, on_interrupt=lambda: "kept checkpoint-10")
    assert status == 130
    assert capsys.readouterr().err == "error: interrupted; kept checkpoint-10\n"


@pytest.mark.parametrize("error", [SystemError("Objects/listobject.c:338: bad argument to "
                                               "internal function"),
                                   RuntimeError("cancelled"), OSError(5, "I/O error")])
def test_an_error_after_ctrl_c_is_the_interrupt(error, capsys):
    with sigint_handled_by(signal.default_int_handler):
        status = exit_on_user_error(ctrl_c_then(error), on_interrupt=lambda: "kept x")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert status == 130
    assert capsys.readouterr().err == "error: interrupted; kept x\n"


def test_the_same_error_without_ctrl_c_is_not_hidden():
    with sigint_handled_by(signal.default_int_handler), pytest.raises(SystemError):
        exit_on_user_error(raising(SystemError("bad argument to internal function")))


def test_a_ctrl_c_is_remembered_for_one_run_only():
    with sigint_handled_by(signal.default_int_handler):
        assert exit_on_user_error(ctrl_c_then(SystemError("x"))) == 130
        with pytest.raises(SystemError):
            exit_on_user_error(raising(SystemError("y")))


def test_an_ignored_sigint_stays_ignored():
    # `command &` in a shell: SIGINT ignored; the command must not start taking it.
    with sigint_handled_by(signal.SIG_IGN):
        assert exit_on_user_error(lambda: None) == 0
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_show_traceback_raises_the_original_error():
    with sigint_handled_by(signal.default_int_handler), pytest.raises(SystemError):
        exit_on_user_error(ctrl_c_then(SystemError("x")), show_traceback=True)
