"""Lazy blockwise embedding: faithfulness to an independent evaluation, invariance, laziness, small graphs, one check
at the edge, progress, refused inputs (full-resolution sigma0, NaN weights), and CUDA refused without a GPU and used
where there is one."""

from __future__ import annotations

import pickle
import warnings

import cloudpickle
import dask
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from PIL import Image

import xwvnet
from tests._factories import RecordingBars, make_imagettes
from tests._reference import reference_input
from xwvnet import _runtime, datasets
from xwvnet import schema as S
from xwvnet.inference import EmptyImagetteWarning, embed, embed_block, get_model, torch_threads
from xwvnet.models import zoo
from xwvnet.models.encoder import Encoder
from xwvnet.models.resnet import resnet18, resnet50
from xwvnet.models.weights import WeightsIntegrityError
from xwvnet.models.zoo import load_encoder

torch.set_num_threads(1)


def calibrated(make, seed: int, size: int = 224) -> torch.nn.Module:
    """Random weights with BatchNorm statistics measured on noise, so features have a trained net's scale (O(1))."""
    torch.manual_seed(seed)
    model = make()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration pass
    with torch.no_grad():
        model.train()(torch.randn(4, 3, size, size))
    return model.eval()


@pytest.fixture(scope="module")
def r18(tmp_path_factory):
    """A file-backed resnet18 Encoder in torchvision format (tiny and fast enough for tests)."""
    path = tmp_path_factory.mktemp("w") / "r18.pt"
    torch.save(calibrated(resnet18, 0, size=96).state_dict(), path)
    return load_encoder(path)


@pytest.fixture
def ds():
    return make_imagettes(n=7, lines=60, samples=70, seed=3)


def test_embed_matches_independent_evaluation_on_real_quicklooks(wvnet_samples, tmp_path):
    """Strictly loaded torchvision-format ResNet-50 (random weights): embed() == per-image reference (1e-4)."""
    from xwvnet.io.quicklook import open_quicklooks

    path = tmp_path / "r50.pt"
    model = calibrated(resnet50, 1)
    torch.save(model.state_dict(), path)
    files = sorted(wvnet_samples.glob("*.png"))
    ds = open_quicklooks(files, chunks=4)
    out = embed(ds, str(path), batch_size=3).compute()
    got = out[S.EMBEDDING].values
    assert got.shape == (15, 2048) and got.dtype == np.float32
    reference = torch.load(path, weights_only=True)
    independent = resnet50().eval()
    independent.load_state_dict(reference, strict=True)
    with torch.no_grad():
        for k, f in enumerate(files):
            x = reference_input(np.asarray(Image.open(f).convert("L")))
            want = independent(x[None])[0].numpy()
            assert out[S.IMAGETTE].values[k] == f.name.split(".")[0]
            np.testing.assert_allclose(got[k], want, rtol=0, atol=1e-4)
    assert np.abs(got).max() > 0.1  # a meaningful comparison, not zeros against zeros


def test_published_weights_reproduce_published_embeddings(wvnet_samples):
    if zoo.find_weights("wvnet-resnet50") is None:
        pytest.skip(
            "published WV-Net weights not available offline: place wvnet_resnet50_weights.pt in "
            f"{datasets.cache_dir()}"
        )
    from xwvnet.io.quicklook import open_quicklooks

    order = [name.split(".")[0] for name in pd.read_csv(wvnet_samples / "sample_data.csv")["filename"]]
    ds = open_quicklooks(sorted(wvnet_samples.glob("*.png"))).sel({S.IMAGETTE: order})
    got = embed(ds, "wvnet-resnet50", batch_size=8)[S.EMBEDDING].values
    np.testing.assert_allclose(got, np.load(wvnet_samples / "valid_embs.npy"), rtol=1e-3, atol=1e-3)


def test_lazy_until_compute(ds, r18):
    lazy = ds.chunk({S.IMAGETTE: 3})

    def refuse(*args, **kwargs):
        raise AssertionError("embed() computed something before .compute()")

    with dask.config.set(scheduler=refuse):
        out = embed(lazy, r18)
    assert isinstance(out[S.EMBEDDING].data, dask.array.Array)
    assert out[S.EMBEDDING].chunks == ((3, 3, 1), (512,))
    assert np.isfinite(out[S.EMBEDDING].values).all()


def test_same_numbers_whatever_chunks_batch_size_and_scheduler(ds, r18):
    base = embed(ds, r18, batch_size=64)[S.EMBEDDING].values  # numpy-backed: eager
    assert np.abs(base).max() > 0.1
    for chunk, batch, scheduler in [(1, 1, "threads"), (3, 2, "threads"), (7, 5, "synchronous"), (4, 64, "threads")]:
        out = embed(ds.chunk({S.IMAGETTE: chunk}), r18, batch_size=batch)
        got = out[S.EMBEDDING].compute(scheduler=scheduler).values
        np.testing.assert_allclose(got, base, rtol=0, atol=1e-5, err_msg=f"chunk={chunk} batch={batch}")


def test_pickled_graph_is_small_and_holds_no_weights(ds, r18):
    out = embed(ds.chunk({S.IMAGETTE: 2}), r18)
    blob = cloudpickle.dumps(dict(out[S.EMBEDDING].data.__dask_graph__()))
    weights_bytes = sum(t.numel() * t.element_size() for t in r18.module.state_dict().values())
    assert weights_bytes > 40e6
    assert len(blob) < 200_000  # the pixels (~30 kB) and the encoder spec, never the 45 MB of weights


def test_model_built_once_per_process(r18):
    a = get_model(r18, "cpu", "float32", False)
    travelled = pickle.loads(pickle.dumps(r18))  # what a worker receives: a new object with the same spec
    assert get_model(travelled, "cpu", "float32", False) is a
    assert get_model(travelled, "cpu", "bfloat16", False) is a  # precision is autocast, not another model
    assert travelled._module is None  # the cache answered; the worker copy never built its own


def test_coordinates_and_inputs_kept_with_provenance(ds, r18):
    out = embed(ds.chunk({S.IMAGETTE: 4}), r18)
    assert set(ds.coords) <= set(out.coords)
    for name in ds.coords:
        np.testing.assert_array_equal(out[name].values, ds[name].values)
    xr.testing.assert_identical(out[S.QUICKLOOK].compute(), ds[S.QUICKLOOK])
    emb = out[S.EMBEDDING]
    assert emb.dims == (S.IMAGETTE, S.FEATURE) and emb.dtype == np.float32
    assert emb.attrs["encoder_weights_hash"] == r18.hash and "xwvnet_version" in emb.attrs
    assert S.EMBEDDING not in ds  # input untouched


def test_bad_datasets_get_clear_errors(ds, r18):
    with pytest.raises(ValueError, match="no image variable"):
        embed(ds.drop_vars(S.QUICKLOOK), r18)
    with pytest.raises(ValueError, match="valid_lines"):
        embed(ds.drop_vars(S.VALID_LINES), r18)
    with pytest.raises(ValueError, match="imagette"):
        embed(ds.rename({S.IMAGETTE: "frame"}), r18)
    with pytest.raises(ValueError, match="Dataset"):
        embed(ds[S.QUICKLOOK], r18)
    with pytest.raises(ValueError, match="precision"):
        embed(ds, r18, precision="float8")


def test_imagettes_without_valid_pixels_give_nan_and_a_warning(ds, r18):
    base = embed(ds, r18)[S.EMBEDDING].values
    broken = ds.copy()
    broken[S.VALID_LINES] = broken[S.VALID_LINES].copy(data=np.where(np.arange(7) == 2, 0, 60).astype(np.int32))
    with pytest.warns(EmptyImagetteWarning, match="1 of"):
        got = embed(broken.chunk({S.IMAGETTE: 3}), r18)[S.EMBEDDING].values
    assert np.isnan(got[2]).all()
    keep = np.arange(7) != 2
    np.testing.assert_allclose(got[keep], base[keep], rtol=0, atol=1e-5)


def test_sigma0_is_stretched_then_embedded(ds, r18):
    rng = np.random.default_rng(0)
    sigma0 = rng.lognormal(-3, 1, ds[S.QUICKLOOK].shape).astype(np.float32)
    sig = ds.drop_vars(S.QUICKLOOK).assign({S.SIGMA0: (ds[S.QUICKLOOK].dims, sigma0)})
    got = embed(sig, r18)[S.EMBEDDING]
    assert got.attrs["image_variable"] == S.SIGMA0
    from xwvnet.radiometry import sigma0_to_quicklook

    quick = embed_block(sigma0_to_quicklook(sigma0), ds[S.VALID_LINES].values, ds[S.VALID_SAMPLES].values,
                        encoder=r18)
    np.testing.assert_allclose(got.values, quick, rtol=0, atol=1e-5)


def test_in_memory_encoder_works_with_threads(ds):
    from xwvnet.models.encoder import Encoder

    enc = Encoder.from_module(calibrated(resnet18, 2, size=96))
    eager = embed(ds, enc)[S.EMBEDDING].values
    lazy = embed(ds.chunk({S.IMAGETTE: 4}), enc)[S.EMBEDDING].compute(scheduler="threads").values
    np.testing.assert_allclose(lazy, eager, rtol=0, atol=1e-5)


def test_torch_threads_times_dask_threads_fit_the_cores(monkeypatch):
    monkeypatch.delenv("XWVNET_TORCH_THREADS", raising=False)
    cores = _runtime.cores()  # what dask counts: affinity and cgroup quota
    assert torch_threads(1) == cores  # one chunk alone gets every core
    for k in (2, 3, 64):
        assert torch_threads(k) == max(1, cores // k) and torch_threads(k) * min(k, cores) <= cores
    monkeypatch.setenv("XWVNET_TORCH_THREADS", "3")
    assert torch_threads(8) == 3


def test_each_task_thread_sets_its_budget(ds, r18, monkeypatch):
    """Under the threaded scheduler, the torch threads seen inside tasks times the running tasks fit the cores."""
    import xwvnet.inference as E

    monkeypatch.delenv("XWVNET_TORCH_THREADS", raising=False)
    seen = []
    real = E._set_threads

    def spy():
        real()
        seen.append((E._ACTIVE, torch.get_num_threads()))

    monkeypatch.setattr(E, "_set_threads", spy)
    embed(ds.chunk({S.IMAGETTE: 2}), r18, batch_size=1)[S.EMBEDDING].compute(scheduler="threads")
    cores = _runtime.cores()
    assert len(seen) == 7  # once per batch
    for active, threads in seen:
        assert 1 <= active <= 4 and threads == max(1, cores // active)
    assert E._ACTIVE == 0


def test_bfloat16_is_close_to_float32(ds, r18):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fp32 = embed_block(ds[S.QUICKLOOK].values[:2], [60, 60], [70, 70], encoder=r18)
        bf16 = embed_block(ds[S.QUICKLOOK].values[:2], [60, 60], [70, 70], encoder=r18, precision="bfloat16")
    cos = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert (cos > 0.999).all() and not np.array_equal(fp32, bf16)


def test_xwvnet_embed_is_the_function_whatever_was_imported_before(ds, r18):
    import xwvnet
    import xwvnet.inference  # noqa: F401
    import xwvnet.training.loader  # noqa: F401

    direct = embed(ds, r18)[S.EMBEDDING].values
    np.testing.assert_array_equal(xwvnet.embed(ds, r18)[S.EMBEDDING].values, direct)
    np.testing.assert_array_equal(ds.wvnet.embed(r18)[S.EMBEDDING].values, direct)


def test_cuda_without_a_gpu_is_a_clear_value_error(ds, r18, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no visible CUDA GPU"):
        embed(ds, r18, device="cuda")
    with pytest.raises(ValueError, match="no visible CUDA GPU"):  # inside a task too, not an AssertionError
        embed_block(ds[S.QUICKLOOK].values[:1], [60], [70], encoder=r18, device="cuda:0")
    with pytest.raises(ValueError, match="device must be"):
        embed(ds, r18, device="tpu")
    assert embed(ds.isel({S.IMAGETTE: [0]}), r18, device="auto")[S.EMBEDDING].shape == (1, 512)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_loads_the_same_weights_and_embeds_what_the_cpu_embeds(ds, r18, monkeypatch):
    """device='cuda': the model is built on the GPU with the file's weights, and its embeddings equal the CPU's."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # float32 convolutions, as on the CPU
    on_gpu = get_model(r18, "cuda:0", "float32", False)
    saved = torch.load(r18.path, weights_only=True)
    state = on_gpu.state_dict()
    assert state.keys() == saved.keys()
    for name, value in state.items():
        assert value.device.type == "cuda", name
        torch.testing.assert_close(value.cpu(), saved[name], rtol=0, atol=0)
    cpu = embed(ds, r18, device="cpu")[S.EMBEDDING].values
    out = embed(ds.chunk({S.IMAGETTE: 4}), r18, device="cuda")
    gpu = out[S.EMBEDDING].values
    assert out[S.EMBEDDING].dtype == np.float32 and np.isfinite(gpu).all() and np.abs(cpu).max() > 0.1
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-4)


def test_one_precision_vocabulary():
    from xwvnet.inference import embedding_attrs

    assert _runtime.PRECISIONS == ("float32", "bfloat16", "float16")
    with pytest.raises(ValueError, match="bfloat16"):
        get_model("random-resnet50", "cpu", "bf16")
    assert embedding_attrs(load_encoder("random-resnet50"), S.QUICKLOOK, "bfloat16")["precision"] == "bfloat16"


def test_embed_docstring_lists_every_parameter():
    import inspect

    from xwvnet.inference import embed

    doc = inspect.getdoc(embed)
    for name in inspect.signature(embed).parameters:
        assert f"\n{name} : " in doc, name
    assert "Returns\n-------" in doc and "Raises\n------" in doc


# ---- checks at the edge, and progress -------------------------------------------------------------------------
def test_embed_checks_once_at_the_edge(weights, monkeypatch):
    ds = make_imagettes(4, lines=48, samples=48, seed=5).chunk({S.IMAGETTE: 2})
    loads = []
    real = xwvnet.inference.load_encoder
    monkeypatch.setattr(xwvnet.inference, "load_encoder", lambda e: loads.append(e) or real(e))
    out = xwvnet.embed(ds, weights).compute(scheduler="synchronous")
    assert len(loads) == 1  # once for the call, not once per chunk
    assert np.isfinite(out[S.EMBEDDING].values).all()
    for bad, match in [({"batch_size": 0}, "batch_size"), ({"precision": "fp8"}, "precision"),
                       ({"device": "gpu0"}, "device must be")]:
        with pytest.raises(ValueError, match=match):
            xwvnet.embed(ds, weights, **bad)


def test_embed_progress_eager_bar_and_lazy_warning(weights, monkeypatch):
    bars = RecordingBars(monkeypatch)
    ds = make_imagettes(5, lines=48, samples=48, seed=6)
    eager = xwvnet.embed(ds, weights, batch_size=2, progress=True)
    assert [u for u in bars.updates if u] == [[2, 2, 1]]
    with pytest.warns(xwvnet.errors.XWVNetWarning, match="ProgressBar"):
        lazy = xwvnet.embed(ds.chunk({S.IMAGETTE: 5}), weights, batch_size=2, progress=True)
    np.testing.assert_allclose(lazy[S.EMBEDDING].values, eager[S.EMBEDDING].values, atol=1e-6, rtol=0)
    quiet = RecordingBars(monkeypatch)
    xwvnet.embed(ds, weights)  # default off
    assert not any(quiet.updates)


def test_an_in_memory_model_with_nan_weights_does_not_embed(few_waves):
    torch.manual_seed(0)
    module = resnet18()
    with torch.no_grad():
        module.layer4[1].conv2.weight[0, 0, 0, 0] = float("nan")
    enc = Encoder.from_module(module, name="diverged")
    with pytest.raises(WeightsIntegrityError, match=r"'diverged' holds non-finite.*layer4\.1\.conv2\.weight "
                                                    r"\(1 values\)"):
        xwvnet.embed(few_waves.isel({S.IMAGETTE: slice(0, 2)}), encoder=enc).compute(scheduler="synchronous")


def test_embedding_full_resolution_sigma0_is_refused_and_multilooked_quicklooks_embed(tmp_path, products):
    folder, _ = products
    full = xwvnet.open_safe([folder])
    with pytest.raises(ValueError, match="41 x 45 m"):
        xwvnet.embed(full, "random-resnet50", var="sigma0")
    looks = xwvnet.safe_to_imagettes([folder], spacing=(41.0, 45.0))
    assert looks.sizes[S.IMAGETTE] == 3


def test_float32_on_a_gpu_switches_cudnn_tf32_off_while_blocks_run_and_puts_it_back():
    """PyTorch lets cuDNN use TF32 by default; "float32" embeddings must be float32 (the flag is process-wide: off
    while any float32 CUDA block runs, restored after the last; other precisions and the CPU leave it alone)."""
    import torch

    from xwvnet.inference import _full_float32

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    before = torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = True
        with _full_float32(cpu, "float32"), _full_float32(cuda, "bfloat16"):
            assert torch.backends.cudnn.allow_tf32
        with _full_float32(cuda, "float32"):
            assert not torch.backends.cudnn.allow_tf32
            with _full_float32(cuda, "float32"):  # a second block (another thread) overlapping the first
                pass
            assert not torch.backends.cudnn.allow_tf32  # still running: not put back yet
        assert torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32 = before
