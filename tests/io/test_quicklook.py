"""The quicklook reader (xwvnet.io.quicklook): the 15 published PNGs, bad and hostile files, labels CSVs, warnings."""

from __future__ import annotations

import doctest
import re
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import xwvnet
from tests._factories import S1_NAME, crafted_png, small_pngs
from tests._numpydoc import check_numpydoc
from xwvnet import schema as S
from xwvnet.io import quicklook as Q
from xwvnet.io.names import parse_name
from xwvnet.io.quicklook import QuicklookWarning


def test_open_the_15_real_samples_with_tags(wvnet_samples):
    csv = wvnet_samples / "sample_data.csv"
    ds = xwvnet.open_quicklooks(wvnet_samples, labels=csv)
    xwvnet.validate(ds)
    assert ds.sizes[S.IMAGETTE] == 15
    table = pd.read_csv(csv)
    for _, row in table.iterrows():
        stem = row["filename"].rsplit(".", 1)[0]
        info = parse_name(row["filename"])
        one = ds.sel({S.IMAGETTE: stem})
        assert one[S.TIME].values == info["time"]
        assert one[S.SWATH].item() == info["swath"]
        assert one[S.ORBIT].item() == info["orbit"]
        assert one[S.NUMBER].item() == info["imagette_number"]
        np.testing.assert_array_equal(one[S.LABELS].sel(label=table.columns[1:]).values, row.iloc[1:].to_numpy())
        pixels = np.asarray(Image.open(wvnet_samples / row["filename"]))
        lines, samples = one[S.VALID_LINES].item(), one[S.VALID_SAMPLES].item()
        assert pixels.shape == (lines, samples)
        np.testing.assert_array_equal(one[S.QUICKLOOK].values[:lines, :samples], pixels)
        assert not one[S.QUICKLOOK].values[lines:, :].any() and not one[S.QUICKLOOK].values[:, samples:].any()
    assert np.isnan(ds[S.LATITUDE]).all()


def test_corrupt_and_text_files_are_skipped_and_reported(wvnet_samples, tmp_path):
    pngs = sorted(wvnet_samples.glob("*.png"))[:3]
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(pngs[0].read_bytes()[:2000])
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.warns(QuicklookWarning, match="skipped 2 unreadable"):
        ds = xwvnet.open_quicklooks([*pngs, corrupt, text])
    assert ds.sizes[S.IMAGETTE] == 3
    assert len(ds.attrs["skipped"]) == 2
    assert any("broken.png" in s for s in ds.attrs["skipped"]) and any("notes.txt" in s for s in ds.attrs["skipped"])


def test_non_sentinel_name_loads_with_missing_metadata(tmp_path):
    Image.fromarray(np.full((10, 12), 7, np.uint8)).save(tmp_path / "my picture.png")
    with pytest.warns(QuicklookWarning, match="not Sentinel-1 WV names"):
        ds = xwvnet.open_quicklooks(tmp_path)
    assert ds[S.IMAGETTE].item() == "my picture"
    assert np.isnat(ds[S.TIME].values[0]) and ds[S.ORBIT].item() == -1 and ds[S.SWATH].item() == ""


def test_rgb_is_converted_with_a_warning(tmp_path):
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "s1a-wv1-QL-vv-20190213t130655-20190213t130658-025911-02e29d-095.png")
    with pytest.warns(QuicklookWarning, match="converted to greyscale"):
        ds = xwvnet.open_quicklooks(tmp_path)
    assert ds[S.QUICKLOOK].dtype == np.uint8
    assert ds[S.QUICKLOOK].values[0, 0, 0] == np.asarray(Image.fromarray(rgb).convert("L"))[0, 0]


def test_empty_selection_is_a_clear_error(tmp_path):
    from xwvnet.errors import InputNotFoundError

    with pytest.raises(InputNotFoundError, match="no quicklook files .* found: the folder .* holds none"):
        xwvnet.open_quicklooks(tmp_path)
    with pytest.raises(FileNotFoundError, match="no quicklook files .* found: no file matches the pattern"):
        xwvnet.open_quicklooks(str(tmp_path / "*.png"))


def test_quicklook_urls_are_refused_never_read_as_local_paths(tmp_path):
    with pytest.raises(ValueError, match="s3://bucket/ql/x.png: quicklook files .* are read from a local disk"):
        xwvnet.open_quicklooks(["s3://bucket/ql/x.png"])


def test_lazy_reading_equals_eager(wvnet_samples, tmp_path):
    for png in sorted(wvnet_samples.glob("*.png"))[:5]:
        shutil.copy(png, tmp_path)
    eager = xwvnet.open_quicklooks(str(tmp_path / "*.png"))
    lazy = xwvnet.open_quicklooks(str(tmp_path / "*.png"), chunks=2)
    assert lazy[S.QUICKLOOK].chunks is not None and lazy[S.QUICKLOOK].data.chunks[0] == (2, 2, 1)
    np.testing.assert_array_equal(lazy[S.QUICKLOOK].values, eager[S.QUICKLOOK].values)


def test_docstring_examples_run(wvnet_samples):
    """The examples in the reader's docstrings run on the published sample and show what they claim."""
    from xwvnet.io import quicklook

    result = doctest.testmod(quicklook, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, result


def test_public_names_have_numpydoc_docstrings():
    check_numpydoc("xwvnet.io.quicklook")


# --- size limits, bombs, damaged pixel data -----------------------------------------------------------------------
@pytest.mark.parametrize("full", [False, True], ids=["header-only", "zeros-stream"])
def test_a_12000_pixel_bomb_is_skipped_and_the_batch_is_read(tmp_path, full):
    good = small_pngs(tmp_path)
    bomb = crafted_png(tmp_path / "bomb.png", 12000, 12000, full=full)
    assert bomb.stat().st_size < 200_000  # almost no data behind a 144-megapixel header
    with pytest.warns(Q.SkippedFilesWarning, match="skipped 1 unreadable") as caught:
        ds = xwvnet.open_quicklooks(tmp_path)
    assert ds.sizes[S.IMAGETTE] == len(good)
    assert (ds.sizes[S.LINE], ds.sizes[S.SAMPLE]) == (20, 30)  # never padded to the bomb's size
    assert len(ds.attrs["skipped"]) == 1 and ds.attrs["skipped"][0].startswith(str(bomb))
    assert "DecompressionBomb" in ds.attrs["skipped"][0]
    warning = next(w.message for w in caught if isinstance(w.message, Q.SkippedFilesWarning))
    assert warning.items == ds.attrs["skipped"]


def test_pils_decompression_bomb_error_does_not_abort_the_batch(tmp_path):
    small_pngs(tmp_path, n=2)
    crafted_png(tmp_path / "huge.png", 20000, 20000)  # beyond 2 x Image.MAX_IMAGE_PIXELS: PIL raises, not warns
    with pytest.warns(Q.SkippedFilesWarning):
        ds = xwvnet.open_quicklooks(tmp_path)
    assert ds.sizes[S.IMAGETTE] == 2
    assert "DecompressionBombError" in ds.attrs["skipped"][0]


def test_size_limits_are_configurable(tmp_path):
    small_pngs(tmp_path, n=2, shape=(20, 30))
    wide = tmp_path / "wide.png"
    Image.fromarray(np.full((2, 5000), 9, np.uint8)).save(wide)  # few pixels, but one side beyond MAX_SIDE
    with pytest.warns(Q.SkippedFilesWarning):
        ds = xwvnet.open_quicklooks(tmp_path)
    assert ds.sizes[S.SAMPLE] == 30 and "ImageTooLargeError" in ds.attrs["skipped"][0]
    assert "max_side=4096" in ds.attrs["skipped"][0]
    with (pytest.warns(Q.SkippedFilesWarning, match="skipped 3"),  # 600 pixels each, beyond max_pixels=500
          pytest.raises(Q.NoReadableImageError, match="within the size limits")):
        xwvnet.open_quicklooks(tmp_path, max_pixels=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Q.UnknownNameWarning)
        ds = xwvnet.open_quicklooks(tmp_path, max_side=5000)
    assert ds.sizes[S.IMAGETTE] == 3 and ds.sizes[S.SAMPLE] == 5000
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="max_pixels must be a positive whole number"):
            xwvnet.open_quicklooks(tmp_path, max_pixels=bad)


def test_damaged_pixel_data_is_skipped_when_read_at_once_and_named_when_lazy(tmp_path):
    small_pngs(tmp_path, n=2)
    crafted_png(tmp_path / "truncated.png", 100, 80)  # a valid header and checksums, too little pixel data
    with pytest.warns(Q.SkippedFilesWarning):
        ds = xwvnet.open_quicklooks(tmp_path, lazy=False)
    assert ds.sizes[S.IMAGETTE] == 2 and (ds.sizes[S.LINE], ds.sizes[S.SAMPLE]) == (20, 30)
    assert "truncated.png" in ds.attrs["skipped"][0] and "cannot be decoded" in ds.attrs["skipped"][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Q.QuicklookWarning)
        lazy = xwvnet.open_quicklooks(tmp_path, chunks=1)
    with pytest.raises(OSError, match="truncated.png: its pixels cannot be decoded"):
        lazy[S.QUICKLOOK].load()
    with pytest.raises(ValueError, match="chunks=1 asks for lazy reading but lazy=False"):
        xwvnet.open_quicklooks(tmp_path, chunks=1, lazy=False)
    with pytest.raises(ValueError, match="chunks must be a positive number"):
        xwvnet.open_quicklooks(tmp_path, chunks=0)


def test_duplicate_ids_can_be_skipped_and_reported(tmp_path):
    first = small_pngs(tmp_path / "a", n=1)[0]
    second = small_pngs(tmp_path / "b", n=1)[0]
    with pytest.raises(ValueError, match="share the imagette id"):
        xwvnet.open_quicklooks([first, second])
    with pytest.warns(Q.SkippedFilesWarning, match="DuplicateId"):
        ds = xwvnet.open_quicklooks([first, second], duplicates="skip")
    assert ds.sizes[S.IMAGETTE] == 1 and str(second) in ds.attrs["skipped"][0] and str(first) in ds.attrs["skipped"][0]


# --- non-Sentinel-1 names --------------------------------------------------------------------------------------------
def test_non_sentinel_names_warn_with_a_count_and_get_nat(tmp_path):
    small_pngs(tmp_path, n=2)
    for name in ("holiday.png", "scan 2.png"):
        Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / name)
    with pytest.warns(Q.UnknownNameWarning, match=r"2 file name\(s\) are not Sentinel-1 WV names.*NaT") as caught:
        ds = xwvnet.open_quicklooks(tmp_path)
    warning = next(w.message for w in caught if isinstance(w.message, Q.UnknownNameWarning))
    assert sorted(warning.items) == ["holiday.png", "scan 2.png"]
    assert int(np.isnat(ds[S.TIME].values).sum()) == 2


# --- labels CSV -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "is empty"),
        (b"\n  \n\n", "is empty"),
        (bytes(range(256)) * 8, "is a binary file"),
        ("filename,WS\na.png,1\n".encode("utf-16"), "is a binary file"),
        (b"\x89PNG\r\n\x1a\nIHDR garbage that is not text \xff\xfe", "cannot be read as a CSV"),
        (b"name,WS\na.png,1\n", "has no 'filename' column"),
        (b"filename;WS\na.png;1\n", "has no 'filename' column"),
        (b"filename\na.png\n", "no tag column"),
        (b"filename,WS,WS\na.png,1,0\n", "names the column"),
        (b"filename,WS\na.png,1,0,1\n", "cannot be read as a CSV"),
        (b"filename,WS\na.png,1\nb.png,0\na.png,1\n", r"1 file\(s\) on more than one row, e.g. 'a' on rows \[2, 4\]"),
        (b"filename,WS\nx/a.png,1\na.tif,0\n", "more than one row"),
        (b"filename,WS\n,1\n", "without a file name"),
        (b"filename,WS\na.png,yes\n", "row 2, 'WS': 'yes'"),
        (b"filename,WS\na.png,\n", "hold other values"),
    ],
    ids=["empty", "blank-lines", "binary", "utf16", "png-bytes", "no-filename", "semicolons", "no-tags", "dup-column",
         "ragged", "dup-rows", "dup-stems", "blank-name", "not-01", "empty-cell"],
)
def test_unusable_labels_csv_is_a_clear_error_naming_it(tmp_path, content, match):
    csv = tmp_path / "tags.csv"
    csv.write_bytes(content)
    with pytest.raises(Q.LabelsFileError, match=match) as err:
        Q.read_labels(csv, ["a", "b"])
    assert str(csv) in str(err.value)
    assert isinstance(err.value, ValueError)


def test_missing_labels_csv_and_folder_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"no labels CSV at {tmp_path / 'nope.csv'}"):
        Q.read_labels(tmp_path / "nope.csv", ["a"])
    with pytest.raises(FileNotFoundError, match=r"\(a folder\)"):
        Q.read_labels(tmp_path, ["a"])


def test_labels_csv_with_bom_windows_paths_and_spaces_reads(tmp_path):
    csv = tmp_path / "tags.csv"
    csv.write_bytes("filename, WS ,MC\r\nC:\\data\\a.png, 1,0\r\nb.png,0,1.0\r\n".encode("utf-8-sig"))
    tags = Q.read_labels(csv, ["a", "b"])
    assert list(tags[S.LABEL].values) == ["WS", "MC"]
    np.testing.assert_array_equal(tags.values, [[1, 0], [0, 1]])
    assert tags.dtype == np.int8


def test_labels_missing_rows_warn_how_many_got_minus_one(tmp_path):
    small_pngs(tmp_path / "in", n=3)
    csv = tmp_path / "tags.csv"
    csv.write_text(f"filename,WS\n{S1_NAME.format(1)},1\nother.png,0\n")
    with pytest.warns(Q.QuicklookWarning) as caught:
        ds = xwvnet.open_quicklooks(tmp_path / "in", labels=csv)
    np.testing.assert_array_equal(ds[S.LABELS].values[:, 0], [1, -1, -1])
    unlabelled = next(w.message for w in caught if isinstance(w.message, Q.UnlabelledWarning))
    assert re.search(r"^2 imagette\(s\) have no row in .*tags.csv: their labels are -1", str(unlabelled))
    assert len(unlabelled.items) == 2 and unlabelled.source == str(csv)
    assert any(isinstance(w.message, Q.UnmatchedLabelsWarning) and w.message.items == ["other"] for w in caught)


# --- warnings a batch job can collect --------------------------------------------------------------------------------
def test_warnings_of_many_batches_summarise_to_one_line_each(tmp_path):
    files = small_pngs(tmp_path / "in", n=4)
    odd = tmp_path / "in" / "holiday.png"
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(odd)
    broken = tmp_path / "in" / "broken.png"
    broken.write_bytes(files[0].read_bytes()[:60])
    csv = tmp_path / "tags.csv"
    csv.write_text("filename,WS\n" + "".join(f"{p.name},1\n" for p in files[:3]) + "gone.png,0\n")
    batches = [[files[0], files[1]], [files[2], files[3], odd, broken]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for batch in batches:
            xwvnet.open_quicklooks(batch, labels=csv)
        warnings.warn("something else", RuntimeWarning, stacklevel=1)
    lines = Q.summarize_warnings(caught)
    text = "\n".join(lines)
    assert "1 file(s) skipped" in text and "broken.png" in text
    assert "1 file name(s) are not Sentinel-1 WV names" in text and "NaT" in text
    assert f"2 imagette(s) have no row in {csv}" in text  # files[3] and holiday, summed over the batches
    assert f"1 row(s) of {csv} match no imagette read, e.g. ['gone']" in text  # rows used by any batch are not listed
    assert "RuntimeWarning: something else" in text
    stems = [p.name.split(".")[0] for p in files]
    assert not any("match no imagette" in line for line in Q.summarize_warnings(caught, known_ids=[*stems, "gone"]))
    assert Q.summarize_warnings([]) == []
