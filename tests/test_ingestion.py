"""Ingest from what users download: SAFE products (folders, zips) and quicklooks mixed into one store."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import xwvnet
from tests._safe_factory import NAME, make_wv_safe
from xwvnet import schema as S
from xwvnet.cli import main
from xwvnet.ingestion import conform, ingest
from xwvnet.io.sources import QUICKLOOK, SAFE, resolve

SIZES = [(200, 180), (190, 220), (210, 200)]


@pytest.fixture
def products(tmp_path: Path) -> tuple[Path, Path]:
    folder, _ = make_wv_safe(tmp_path / "folder", sizes=SIZES, seed=1)
    other = NAME.replace("ABCD", "EF01").replace("T130655", "T140655")
    zipped, _ = make_wv_safe(tmp_path / "zipped", name=other, sizes=SIZES[:2], seed=2, as_zip=True)
    return folder, zipped


def test_sources_are_told_apart_once_at_the_door(tmp_path, products, wvnet_samples):
    folder, zipped = products
    png = sorted(wvnet_samples.glob("*.png"))[0]
    found = resolve([folder, zipped.parent, folder / "manifest.safe", png], kinds=(QUICKLOOK, SAFE))
    assert [(s.kind, s.path) for s in found] == [(SAFE, folder), (SAFE, zipped), (QUICKLOOK, png)]


def test_a_folder_of_safe_products_and_quicklooks_is_ingested_whole(tmp_path, products, wvnet_samples):
    folder, zipped = products
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copytree(folder, mixed / folder.name)
    shutil.copy(zipped, mixed)
    for png in sorted(wvnet_samples.glob("*.png"))[:2]:
        shutil.copy(png, mixed)
    (mixed / "README.txt").write_text("not a source")
    report = ingest(mixed, tmp_path / "wv.zarr", spacing=(8.2, 9.0))
    assert report.added == 2 + 5 and not report.skipped


def test_bad_source_urls_and_empty_inputs_are_one_line_each(tmp_path):
    from xwvnet.errors import InputNotFoundError, XWVNetError

    for sources, error, what in ((["s3://bucket/ql/x.png"], ValueError, "read from a local disk"),
                                 (["s3://bucket/wv.zarr"], ValueError, "give quicklook files"),
                                 ([], ValueError, "given \\(an empty list\\)"),
                                 ([tmp_path / "none_*.png"], InputNotFoundError, "no file matches the pattern")):
        with pytest.raises(error, match=what) as err:
            ingest(sources, tmp_path / "wv.zarr")
        assert isinstance(err.value, XWVNetError) and len(str(err.value).splitlines()) == 1
    assert not (tmp_path / "wv.zarr").exists()


def test_safe_products_and_quicklooks_into_one_store_resumable(tmp_path, products, wvnet_samples):
    folder, zipped = products
    store = tmp_path / "wv.zarr"
    pngs = sorted(wvnet_samples.glob("*.png"))[:3]
    report = ingest([*map(str, pngs), folder, zipped], store, spacing=(8.2, 9.0))
    assert report.added == 3 + 5 and report.total == 8 and not report.skipped
    ds = xwvnet.open_store(store)
    ids = [str(i) for i in ds[S.IMAGETTE].values]
    assert f"{NAME}:001" in ids and pngs[0].stem in ids
    safe_rows = ds.sel({S.IMAGETTE: [i for i in ids if ":" in i]})
    assert safe_rows[S.QUICKLOOK].dtype == np.uint8
    assert np.isfinite(safe_rows[S.LATITUDE].values).all()  # SAFE imagettes know their position, PNGs do not
    assert (safe_rows[S.VALID_LINES].values > 10).all()
    again = ingest([folder, zipped, *map(str, pngs)], store, spacing=(8.2, 9.0))
    assert again.added == 0 and again.present == 8 and again.total == 8


def test_a_damaged_imagette_is_skipped_and_named_the_rest_ingested(tmp_path, products):
    folder, _ = products
    tiff = next((folder / "measurement").glob("*-002.tiff"))
    tiff.write_bytes(tiff.read_bytes()[:-200])
    report = ingest([folder], tmp_path / "wv.zarr", spacing=(8.2, 9.0))
    assert report.added == 2 and any(":002" in s for s in report.skipped)


def test_cli_ingests_safe_products_in_parallel_processes(tmp_path, products, capsys):
    folder, zipped = products
    store = tmp_path / "wv.zarr"
    assert main(["ingest", str(folder), str(zipped), "--store", str(store), "--spacing", "8.2", "9.0",
                 "--keep-sigma0", "--workers", "2"]) == 0
    ds = xwvnet.open_store(store)
    assert ds.sizes[S.IMAGETTE] == 5 and S.SIGMA0 in ds
    assert "added" in capsys.readouterr().out


def test_conform_fills_and_drops_variables_to_fit_the_store():
    like = xwvnet.synthetic.imagettes(2, seed=0, size=(16, 16))
    ds = xwvnet.synthetic.imagettes(2, seed=1, size=(16, 16)).drop_vars(["hs", S.HEADING]).assign(extra=(
        S.IMAGETTE, [1, 2]))
    out, notes = conform(ds, like)
    assert set(out.variables) == set(like.variables)
    assert np.isnan(out["hs"].values).all() and np.isnan(out[S.HEADING].values).all()
    assert any("extra" in n for n in notes) and any("hs" in n for n in notes)


def test_store_keeps_what_was_there_when_a_product_vanishes(tmp_path, products):
    folder, zipped = products
    store = tmp_path / "wv.zarr"
    ingest([folder], store, spacing=(8.2, 9.0))
    shutil.rmtree(folder)
    report = ingest([zipped], store, spacing=(8.2, 9.0))
    assert report.total == 5


def test_sub_millisecond_times_are_stored_as_whole_milliseconds_when_appending(tmp_path, products, wvnet_samples):
    folder, _ = products
    store = tmp_path / "wv.zarr"
    ingest([str(sorted(wvnet_samples.glob("*.png"))[0])], store)  # a millisecond store made by a quicklook
    ingest([folder], store, spacing=(8.2, 9.0))
    times = xwvnet.open_store(store)[S.TIME].values
    assert times.dtype.kind == "M" and (times >= np.datetime64("2019-01-01")).all()
    assert (times <= np.datetime64("2019-12-31")).all()
    direct = xwvnet.open_safe([folder])[S.TIME].values
    np.testing.assert_array_equal(np.sort(times[1:]), np.sort(direct.astype("datetime64[ms]").astype(times.dtype)))


def test_embedding_full_resolution_sigma0_is_refused_and_multilooked_quicklooks_embed(tmp_path, products):
    folder, _ = products
    full = xwvnet.open_safe([folder])
    with pytest.raises(ValueError, match="41 x 45 m"):
        xwvnet.embed(full, "random-resnet50", var="sigma0")
    looks = xwvnet.safe_to_imagettes([folder], spacing=(41.0, 45.0))
    assert looks.sizes[S.IMAGETTE] == 3


def test_label_rows_for_imagettes_not_in_the_store_are_reported_and_the_rest_applied(tmp_path, capsys):
    """A row for an imagette not committed (yet) does not vanish: the report and the command name it."""
    from tests._factories import make_imagettes

    store = tmp_path / "s.zarr"
    xwvnet.to_store(make_imagettes(4), store)
    ids = [str(i) for i in xwvnet.open_store(store)[S.IMAGETTE].values]
    csv = tmp_path / "tags.csv"
    rows = [f"{name}.png,{i % 2},1" for i, name in enumerate([*ids[:3], "s1a-not-ingested-yet"])]
    csv.write_text("\n".join(["filename,WS,MC", *rows]) + "\n")
    report = xwvnet.add_labels(store, csv)
    assert (report.added, report.present, report.total) == (3, 1, 4)
    assert report.skipped == ["row for s1a-not-ingested-yet: no such imagette in the store"]
    assert len(report.warnings) == 1 and report.warnings[0].startswith("1 row(s) of tags.csv match no imagette")
    tags = xwvnet.open_store(store)[S.LABELS].sel({S.LABEL: ["WS", "MC"]}).values
    np.testing.assert_array_equal(tags, [[0, 1], [1, 1], [0, 1], [-1, -1]])
    assert main(["label", str(store), str(csv)]) == 0
    out = capsys.readouterr().out
    assert "3 of 4" in out and "1 row(s) of tags.csv match no imagette" in out and "s1a-not-ingested-yet" in out


def test_safe_imagettes_are_computed_where_client_says_threads_here_while_a_client_is_active(tmp_path):
    """``client="threads"``: the SAFE imagettes are computed on threads here, not on the active client's cluster."""
    distributed = pytest.importorskip("distributed")
    product, _ = make_wv_safe(tmp_path / "safe", sizes=[(600, 500)], seed=4)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as client:
        with distributed.get_task_stream(client) as here:
            assert ingest([product], tmp_path / "here", client="threads").added == 1
        with distributed.get_task_stream(client) as there:
            assert ingest([product], tmp_path / "there").added == 1  # default: the active client
    assert not here.data and there.data  # only the default run used the cluster
    np.testing.assert_array_equal(xwvnet.open_store(tmp_path / "here").quicklook.values,
                                  xwvnet.open_store(tmp_path / "there").quicklook.values)
