"""The published metadata conventions (xwvnet.conventions) name the field the encoders' transforms read."""

import pytest


def test_the_field_the_conventions_name_is_the_one_the_transforms_read():
    pytest.importorskip("torch")
    from xwvnet import conventions
    from xwvnet.models import transforms

    assert (conventions.FIELD, conventions.SIZE) == (transforms.CROP, transforms.SIZE)
    assert set(conventions._TRANSFORM_ENTRY) == set(transforms.TRANSFORMS)
    for name, entry in conventions._TRANSFORM_ENTRY.items():
        assert getattr(transforms, entry.split(":")[1]) is transforms.TRANSFORMS[name]
