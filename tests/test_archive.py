"""embed_store: chunk-by-chunk embedding of a store, resumable after SIGKILL, appendable, failing per chunk."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

import xwvnet
from tests._factories import chunk_objects, embed_whole_store, flip_byte, make_imagettes, save_random_resnet18
from xwvnet import schema as S
from xwvnet.archive import ChunkTask, EmbedStoreError, embed_store
from xwvnet.io.audit import status
from xwvnet.io.storage import locate

torch = pytest.importorskip("torch")

N, SIZE, IN_CHUNK = 16, 64, 4
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A small random ResNet-18 in torchvision format: fast, and offline."""
    return save_random_resnet18(tmp_path_factory.mktemp("weights") / "resnet18.pt", seed=0)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("input") / "in.zarr"
    xwvnet.to_store(make_imagettes(N, lines=SIZE, samples=SIZE, seed=3), path, chunk_size=IN_CHUNK)
    return path


@pytest.fixture(scope="module")
def reference(source, weights) -> np.ndarray:
    """Single-process embeddings of the whole input in one block."""
    return embed_whole_store(source, weights)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_threaded_run_writes_embeddings_and_coords(source, weights, reference, tmp_path):
    out = tmp_path / "out.zarr"
    report = embed_store(source, out, weights, chunk_size=IN_CHUNK, progress=False)
    assert report.complete and report.failed == []
    assert report.computed == list(range(N // IN_CHUNK)) and report.embedded == N
    assert "thread pool" in report.runner
    emb = xwvnet.open_store(out)
    np.testing.assert_allclose(emb[S.EMBEDDING].values, reference, atol=1e-5, rtol=0)
    src = xwvnet.open_store(source)
    assert list(emb[S.IMAGETTE].values) == list(src[S.IMAGETTE].values)
    np.testing.assert_array_equal(emb[S.TIME].values, src[S.TIME].values)
    np.testing.assert_array_equal(emb[S.SWATH].values, src[S.SWATH].values)
    assert emb[S.EMBEDDING].attrs["encoder_arch"] == "resnet18"
    assert emb[S.EMBEDDING].chunks[0][0] == IN_CHUNK  # region writes aligned to the stored chunks
    assert status(out).missing_chunks == [] and status(out).complete == N
    assert "complete          yes" in report.summary()
    again = embed_store(source, out, weights, progress=False)  # nothing left to do
    assert again.computed == [] and again.skipped == N // IN_CHUNK and again.complete


def test_append_embeds_only_new_imagettes(source, weights, tmp_path):
    src = _copy(source, tmp_path / "in.zarr")
    out = tmp_path / "out.zarr"
    embed_store(src, out, weights, chunk_size=6, progress=False)  # 16 = 6 + 6 + 4: the last chunk is partly filled
    extra = make_imagettes(5, lines=SIZE, samples=SIZE, seed=9)
    xwvnet.to_store(extra, src)
    report = embed_store(src, out, weights, progress=False)
    assert report.embedded == 5 and report.total == N + 5 and report.complete
    assert report.computed == [2, 3]  # the partly filled chunk resumed where it stopped, then a new one
    emb = xwvnet.open_store(out)
    all_ids = list(xwvnet.open_store(src)[S.IMAGETTE].values)
    assert list(emb[S.IMAGETTE].values) == all_ids  # order follows the input
    from xwvnet.inference import embed_block

    new = embed_block(extra[S.QUICKLOOK].values, extra[S.VALID_LINES].values, extra[S.VALID_SAMPLES].values,
                      encoder=str(weights))
    np.testing.assert_allclose(emb[S.EMBEDDING].values[N:], new, atol=1e-5, rtol=0)
    assert not np.isnan(emb[S.EMBEDDING].values).any()


def test_corrupt_chunk_fails_alone_and_rerun_completes(source, weights, reference, tmp_path):
    src = _copy(source, tmp_path / "in.zarr")
    biggest = max(chunk_objects(str(src)).items(), key=lambda kv: kv[1])[0]  # one quicklook chunk
    flip_byte(biggest)
    out = tmp_path / "out.zarr"
    report = embed_store(src, out, weights, chunk_size=IN_CHUNK, progress=False, errors="report")
    assert not report.complete and len(report.failed) == 1
    bad = report.failed[0].chunk_index
    ids = list(xwvnet.open_store(source)[S.IMAGETTE].values)
    assert report.failed[0].ids == ids[bad * 4 : bad * 4 + 4] == report.missing_ids
    assert ids[bad * 4] in report.summary() and "re-run" in report.summary()
    assert sorted(report.computed) == sorted(set(range(4)) - {bad})
    assert status(out).missing_chunks == [bad]
    with pytest.raises(EmbedStoreError, match=ids[bad * 4]) as info:
        embed_store(src, out, weights, progress=False)
    assert info.value.report.computed == []
    flip_byte(biggest)  # the fix
    fixed = embed_store(src, out, weights, progress=False)
    assert fixed.complete and fixed.computed == [bad]
    np.testing.assert_allclose(xwvnet.open_store(out)[S.EMBEDDING].values, reference, atol=1e-5, rtol=0)


def test_resume_refuses_another_encoder_or_input(source, weights, tmp_path):
    out = tmp_path / "out.zarr"
    embed_store(source, out, weights, chunk_size=8, progress=False)
    other = tmp_path / "other.pt"
    from xwvnet.models.resnet import resnet18

    torch.save(resnet18().state_dict(), other)
    with pytest.raises(ValueError, match="encoder_weights_hash"):
        embed_store(source, out, other, progress=False)
    with pytest.raises(ValueError, match="chunk_size=8"):
        embed_store(source, out, weights, chunk_size=4, progress=False)
    rewritten = tmp_path / "rewritten.zarr"
    xwvnet.to_store(make_imagettes(N, lines=SIZE, samples=SIZE, seed=4), rewritten, chunk_size=IN_CHUNK)
    with pytest.raises(ValueError, match="different input"):
        embed_store(rewritten, out, weights, progress=False)


def test_refuses_to_overwrite_foreign_paths(source, weights, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        embed_store(source, folder, weights, progress=False)
    assert (folder / "keep.txt").read_text() == "mine"
    other = tmp_path / "store.zarr"  # an imagette store is not an embedding store
    shutil.copytree(source, other)
    with pytest.raises(ValueError, match="not an xwvnet embedding store"):
        embed_store(source, other, weights, progress=False)
    assert xwvnet.io.store.store_kind(other) == "imagettes"
    with pytest.raises(ValueError, match="holds no imagettes"):
        embed_store(tmp_path / "missing.zarr", tmp_path / "o.zarr", weights, progress=False)


def test_tasks_carry_the_spec_not_the_weights(source, weights, tmp_path):
    encoder = xwvnet.load_encoder(weights)
    assert encoder._module is not None  # built in this process
    xwvnet.io.store.extend_embedding_store(locate(tmp_path / "o.zarr"), xwvnet.open_store(source), chunk_size=4,
                                           dim=512, attrs={}, embedding_attrs={})
    fork = xwvnet.io.store.EmbeddingWriter(locate(tmp_path / "o.zarr")).fork()
    task = ChunkTask(locate(source), "snapshot", S.QUICKLOOK, 0, 0, 0, 4, encoder, 64, "cpu", "float32", fork)
    size = len(pickle.dumps(task))
    assert size < 5_000 < weights.stat().st_size // 1000


def test_cli_embed_exit_codes(source, weights, tmp_path, capsys):
    from xwvnet.cli import main

    out = tmp_path / "cli.zarr"
    assert main(["embed", str(source), str(out), "--encoder", str(weights), "--batch-size", "8"]) == 0
    assert "complete          yes" in capsys.readouterr().out
    src = _copy(source, tmp_path / "in.zarr")
    flip_byte(max(chunk_objects(str(src)).items(), key=lambda kv: kv[1])[0])
    assert main(["embed", str(src), str(tmp_path / "bad.zarr"), "--encoder", str(weights), "--device", "cpu"]) == 1
    printed = capsys.readouterr().out
    assert "missing" in printed and "test-3-0000" in printed


def test_float16_embedding_store_halves_the_size_and_keeps_neighbours(tmp_path):
    import xwvnet
    from tests._factories import save_random_resnet18
    from xwvnet.archive import embed_store

    weights = save_random_resnet18(tmp_path / "r18.pt", seed=0)
    source = tmp_path / "in.zarr"
    xwvnet.to_store(xwvnet.synthetic.imagettes(24, seed=5, size=(32, 32)), source)
    full, half = tmp_path / "f32.zarr", tmp_path / "f16.zarr"
    embed_store(source, full, weights, progress=False, chunk_size=8, batch_size=8)
    embed_store(source, half, weights, progress=False, chunk_size=8, batch_size=8, dtype="float16")
    a, b = xwvnet.open_store(full), xwvnet.open_store(half)
    assert a[S.EMBEDDING].dtype == np.float32 and b[S.EMBEDDING].dtype == np.float16
    np.testing.assert_allclose(b[S.EMBEDDING].values.astype(np.float32), a[S.EMBEDDING].values, rtol=1e-3, atol=1e-3)
    na, nb = xwvnet.neighbors(a, k=3).compute(), xwvnet.neighbors(b, k=3).compute()
    # random-init embeddings of synthetic imagettes are near-duplicates (cosine ~0.99), so ties may reorder: the
    # neighbours found in float16 must be as similar, in float32, as the float32 ones
    x = a[S.EMBEDDING].values.astype(np.float64)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    position = {name: i for i, name in enumerate(a[S.IMAGETTE].values)}
    found = np.array([[u[i] @ u[position[n]] for n in row] for i, row in enumerate(nb["neighbor"].values)])
    np.testing.assert_allclose(found, na["similarity"].values, atol=2e-3)
    with pytest.raises(ValueError, match="dtype"):
        embed_store(source, half, weights, progress=False, chunk_size=8, batch_size=8)  # resume as float32
    with pytest.raises(ValueError, match="dtype must be"):
        embed_store(source, tmp_path / "x.zarr", weights, progress=False, dtype="int8")


def test_bad_arguments_are_refused_before_any_output(source, weights, tmp_path):
    out = tmp_path / "out.zarr"
    cases = [({"precision": "fp16"}, "precision must be one of"), ({"batch_size": 0}, "batch_size"),
             ({"chunk_size": 2.5}, "chunk_size must be"), ({"chunk_size": 0}, "chunk_size must be"),
             ({"dtype": "int8"}, "dtype must be"), ({"device": "gpu0"}, "device must be")]
    if not torch.cuda.is_available():  # the tasks would run here, where CUDA cannot work
        cases.append(({"device": "cuda"}, "no visible CUDA GPU"))
    for bad, match in cases:
        with pytest.raises(ValueError, match=match):
            embed_store(source, out, weights, progress=False, **bad)
        assert not out.exists(), bad
    assert embed_store(source, out, weights, progress=False, precision="float32").complete  # the fixed re-run
