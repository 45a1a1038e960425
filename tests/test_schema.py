"""The data model (xwvnet.schema): validate names every problem; the module's docstrings and their examples."""

import doctest

import numpy as np
import pytest

import xwvnet
from tests._factories import make_imagettes
from tests._numpydoc import check_numpydoc, documented_params, sections
from xwvnet import schema as S


def test_valid_dataset_passes_and_is_returned():
    ds = make_imagettes()
    assert xwvnet.validate(ds) is ds
    assert ds.wvnet.validate() is ds


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda ds: ds.drop_vars(S.ORBIT), "missing coordinate 'orbit'"),
        (lambda ds: ds.drop_vars([S.QUICKLOOK]), "no image variable"),
        (lambda ds: ds.assign({S.QUICKLOOK: ds[S.QUICKLOOK].astype("float32")}), "expected uint8"),
        (lambda ds: ds.assign_coords({S.IMAGETTE: ["a"] * ds.sizes[S.IMAGETTE]}), "duplicate imagette ids: a"),
        (lambda ds: ds.rename({S.IMAGETTE: "image"}), "missing dimension 'imagette'"),
        (lambda ds: ds.assign_coords({S.TIME: (S.IMAGETTE, np.zeros(ds.sizes[S.IMAGETTE]))}), "'time' has dtype"),
        (lambda ds: ds.drop_vars(S.VALID_LINES), "missing variable 'valid_lines'"),
    ],
)
def test_invalid_dataset_names_the_problem(mutate, message):
    with pytest.raises(ValueError, match=message):
        xwvnet.validate(mutate(make_imagettes()))


def test_every_problem_is_listed_at_once():
    ds = make_imagettes().drop_vars([S.ORBIT, S.SWATH])
    with pytest.raises(ValueError) as err:
        xwvnet.validate(ds)
    assert "'orbit'" in str(err.value) and "'swath'" in str(err.value)


def test_not_a_dataset():
    with pytest.raises(ValueError, match="expected an xarray.Dataset"):
        xwvnet.validate(make_imagettes()[S.QUICKLOOK])


def test_image_var_choice():
    ds = make_imagettes()
    assert S.image_var(ds) == S.QUICKLOOK
    with pytest.raises(ValueError, match="'sigma0' is not in the Dataset"):
        S.image_var(ds, "sigma0")


def test_did_you_mean_names_close_names_only():
    assert S.did_you_mean("hss", ["hs", "t2m", "wind_speed"]) == " Did you mean 'hs'?"
    assert S.did_you_mean("qqq", ["hs", "t2m"]) == ""


def test_misspelt_variable():
    ds = xwvnet.synthetic.imagettes(3, seed=0, size=(16, 16))
    with pytest.raises(ValueError, match=r"Did you mean 'quicklook'\?"):
        S.image_var(ds, "quicklok")
    with pytest.raises(ValueError, match=r"For 'wind_sped', did you mean 'wind_speed'\?"):
        S.require(ds, ["wind_sped"], "a probe")


# --------------------------------------------------------------------------- documentation in the code


def test_public_names_have_numpydoc_docstrings():
    check_numpydoc("xwvnet.schema")


def test_section_parser_catches_an_undocumented_parameter():
    def documented(a: int, b: int) -> int:
        """Add.

        Parameters
        ----------
        a : int
            One.

        Returns
        -------
        int
        """
        return a + b

    assert documented_params(documented.__doc__) == {"a"}
    assert set(sections(documented.__doc__)) == {"", "Parameters", "Returns"}


def test_docstring_examples_run():
    result = doctest.testmod(S, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, result
