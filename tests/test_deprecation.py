"""Renamed arguments: the old name works for one release with a FutureWarning naming the new one."""

import warnings

import pytest

from xwvnet._deprecation import renamed_arguments


@renamed_arguments(chunk="chunk_size")
def _write(data, *, chunk_size=1):
    return data, chunk_size


def test_the_old_name_runs_as_the_new_one_and_warns_at_the_callers_line():
    with pytest.warns(FutureWarning, match=r"chunk_size=") as caught:
        assert _write("x", chunk=4) == ("x", 4)
    assert caught[0].filename == __file__


def test_the_new_name_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _write("x", chunk_size=3) == ("x", 3)


def test_both_names_at_once_is_an_error():
    with pytest.raises(TypeError, match="both chunk= and its new name chunk_size="):
        _write("x", chunk=1, chunk_size=2)
