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


def test_the_old_preprocess_module_still_imports_and_names_the_new_homes():
    import importlib
    import sys

    sys.modules.pop("xwvnet.preprocess", None)
    with pytest.warns(FutureWarning, match="xwvnet.radiometry and the model input transforms from xwvnet.models"):
        old = importlib.import_module("xwvnet.preprocess")
    from xwvnet.models.transforms import wvnet_transform
    from xwvnet.radiometry import sigma0_to_quicklook

    assert old.wvnet_transform is wvnet_transform and old.sigma0_to_quicklook is sigma0_to_quicklook
