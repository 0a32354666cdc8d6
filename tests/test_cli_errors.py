"""Only Gold Digger's own errors are the user's: anything else is reported as a bug, with
its traceback at -v."""

from __future__ import annotations

import numpy as np
import pytest

from golddigger.cli import demo
from golddigger.cli.main import main
from golddigger.errors import GoldDiggerError, ImageReadError, OptionError


def _raise(exc):
    def run(args):
        raise exc
    return run


@pytest.fixture
def patched(monkeypatch):
    def use(exc):  # the parser takes demo.run when main builds it
        monkeypatch.setattr(demo, "run", _raise(exc))
    return use


def _numpy_value_error() -> ValueError:
    try:
        np.zeros(3).reshape(2, 2)
    except ValueError as err:
        return err
    raise AssertionError  # pragma: no cover


def test_numpy_value_error_is_a_bug_report(patched, capsys, tmp_path):
    patched(_numpy_value_error())
    code = main(["demo", "-o", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 3
    assert "this is a bug" in err and "ValueError" in err and "-v" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bug_shows_the_traceback_with_v(patched, capsys, tmp_path):
    patched(_numpy_value_error())
    assert main(["demo", "-o", str(tmp_path), "-v"]) == 3
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize("exc", [GoldDiggerError("a.tif: fix it like so"),
                                 ImageReadError("a.tif: fix it like so"),
                                 OptionError("a.tif: fix it like so")])
def test_gold_digger_errors_are_one_line(patched, capsys, tmp_path, exc):
    patched(exc)
    code = main(["demo", "-o", str(tmp_path), "-vv"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == "golddigger demo: error: a.tif: fix it like so"


def test_input_errors_stay_value_errors():
    assert issubclass(OptionError, ValueError) and issubclass(ImageReadError, GoldDiggerError)
