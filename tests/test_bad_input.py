"""Bad input gets a clear error naming the input, or is skipped and reported (issue 11, items 6, 8 and 9).

Ingest limits (oversized images, decompression bombs, damaged pixel data), labels CSVs that cannot be used,
probe files that are not probes or are damaged, and warnings that a batch job can collect and summarise.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from PIL import Image

import xwvnet
from xwvnet import probe as P
from xwvnet import schema as S
from xwvnet.ingestion import ingest
from xwvnet.io import quicklook as Q

S1_NAME = "s1a-wv1-QL-vv-20190213t130655-20190213t130658-025911-02e29d-{:03d}.png"


# --- crafted PNGs ----------------------------------------------------------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def crafted_png(path: Path, width: int, height: int, *, full: bool = False) -> Path:
    """A greyscale PNG whose header claims ``width`` x ``height``; its data is a few zero bytes (``full=False``)
    or a complete zlib stream of zeros (``full=True``: decodes to a black image, yet only ~100 kB on disk)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    if full:
        deflate, row, parts = zlib.compressobj(9), bytes(width + 1), []
        for _ in range(height):
            parts.append(deflate.compress(row))
        data = b"".join(parts) + deflate.flush()
    else:
        data = zlib.compress(bytes(100))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))
    return path


def small_pngs(folder: Path, n: int = 3, shape: tuple[int, int] = (20, 30)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / S1_NAME.format(i + 1)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


# --- ingest limits ---------------------------------------------------------------------------------------------------
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


def test_ingest_skips_a_bomb_and_stores_the_rest_unpadded(tmp_path):
    small_pngs(tmp_path / "in", n=3)
    crafted_png(tmp_path / "in" / "bomb.png", 12000, 12000)
    report = ingest(tmp_path / "in", tmp_path / "store.zarr")
    assert (report.added, report.total, len(report.skipped)) == (3, 3, 1)
    assert "bomb.png" in report.skipped[0]
    stored = xwvnet.open_store(tmp_path / "store.zarr")
    assert (stored.sizes[S.LINE], stored.sizes[S.SAMPLE]) == (20, 30)


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


# --- labels CSV ------------------------------------------------------------------------------------------------------
HINT = "'filename' column and one 0/1 column per tag"


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


# --- probe files -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_probe(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 4)).astype(np.float32)
    ds = xr.Dataset({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), x), "hs": (S.IMAGETTE, x @ [1.0, 2.0, 0.0, -1.0])},
                    coords={S.IMAGETTE: [f"i{k}" for k in range(40)]})
    return P.fit_probe(ds, "hs").save(tmp_path_factory.mktemp("probe") / "hs.probe")


def _rewrite(saved: Path, target: Path, header: object = None, **arrays: np.ndarray) -> Path:
    with np.load(saved) as npz:
        parts = {name: npz[name] for name in npz.files}
    if header is not None:
        parts["header"] = np.array(json.dumps(header))
    parts.update(arrays)
    with open(target, "wb") as fh:
        np.savez(fh, **parts)
    return target


def _header(saved: Path) -> dict:
    with np.load(saved) as npz:
        return json.loads(str(npz["header"]))


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda h: {k: v for k, v in h.items() if k != "kind"}, r"header lacks \['kind'\]"),
        (lambda h: [1, 2, 3], "its header is a JSON list"),
        (lambda h: "just text", "its header is a JSON str"),
        (lambda h: {**h, "outputs": 5}, r"outputs \(int, expected list\)"),
        (lambda h: {**h, "outputs": [1]}, "outputs .not all strings"),
        (lambda h: {**h, "kind": ["regression"]}, r"kind \(list, expected str\)"),
        (lambda h: {**h, "info": [1]}, r"info \(list, expected dict\)"),
        (lambda h: {**h, "kind": "cluster"}, "probe kind must be one of"),
        (lambda h: {**h, "format_version": True}, "format version True"),
    ],
    ids=["no-kind", "json-list", "json-string", "outputs-int", "outputs-not-str", "kind-list", "info-list",
         "kind-unknown", "version-bool"],
)
def test_probe_headers_that_are_not_probes_are_named(saved_probe, tmp_path, damage, match):
    bad = _rewrite(saved_probe, tmp_path / "bad.probe", header=damage(_header(saved_probe)))
    with pytest.raises(P.ProbeFileError, match=match) as err:
        P.Probe.load(bad)
    assert str(bad) in str(err.value)


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.9, 0.99])
def test_truncated_probe_files_are_named(saved_probe, tmp_path, keep):
    data = saved_probe.read_bytes()
    cut = tmp_path / "cut.probe"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(P.ProbeFileError, match="not an xwvnet probe file, or is damaged") as err:
        P.Probe.load(cut)
    assert str(cut) in str(err.value)


def test_flipped_byte_non_zip_and_bad_arrays_are_named(saved_probe, tmp_path):
    data = bytearray(saved_probe.read_bytes())
    data[len(data) // 3] ^= 0xFF
    flipped = tmp_path / "flipped.probe"
    flipped.write_bytes(bytes(data))
    with pytest.raises(P.ProbeFileError, match="flipped.probe"):
        P.Probe.load(flipped)
    for name, content in {"empty.probe": b"", "text.probe": b"hello", "random.probe": bytes(range(256)) * 9}.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(P.ProbeFileError, match=f"{name} is not an xwvnet probe file"):
            P.Probe.load(tmp_path / name)
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(P.ProbeFileError, match="not a readable .npz archive"):
        P.Probe.load(tmp_path / "array.npy")
    coef = np.load(saved_probe)["coef"]
    words = _rewrite(saved_probe, tmp_path / "words.probe", coef=np.array(["a"] * coef.size).reshape(coef.shape))
    with pytest.raises(P.ProbeFileError, match=r"arrays \['coef'\] are not numbers"):
        P.Probe.load(words)
    nan = _rewrite(saved_probe, tmp_path / "nan.probe", coef=np.full(coef.shape, np.nan))
    with pytest.raises(P.ProbeFileError, match=r"nan.probe is a damaged probe file: arrays \['coef'\] hold non-finite"):
        P.Probe.load(nan)
    zero = _rewrite(saved_probe, tmp_path / "zero.probe", scale=np.zeros(coef.shape))
    with pytest.raises(P.ProbeFileError, match="zero.probe is a damaged probe file"):
        P.Probe.load(zero)
    with pytest.raises(FileNotFoundError, match=r"\(a folder\)"):
        P.Probe.load(tmp_path)
    assert P.Probe.load(shutil.copy(saved_probe, tmp_path / "fine.probe")).n_features == 4
