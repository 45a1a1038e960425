"""Shared fixtures: the real sample-data mirror, and small imagette Datasets made here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import xarray as xr

from tests._factories import make_imagettes, new_bucket

REPO = Path(__file__).resolve().parent.parent


def _mirror() -> Path | None:
    value = os.environ.get("XWVNET_DATA_DIR", "").strip()
    for candidate in ([Path(value)] if value else []) + [REPO.parent / "shared" / "data"]:
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture(autouse=True, scope="session")
def _point_xwvnet_at_the_mirror():
    """Make the package itself read the mirror too (as `make test` does), without touching the network."""
    mirror = _mirror()
    if mirror is not None and not os.environ.get("XWVNET_DATA_DIR"):
        os.environ["XWVNET_DATA_DIR"] = str(mirror)
    yield


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of real sample files (XWVNET_DATA_DIR, else ../shared/data); skip when there is none."""
    mirror = _mirror()
    if mirror is None:
        pytest.skip("real sample data not available: set XWVNET_DATA_DIR to a mirror laid out like ../shared/data")
    return mirror


@pytest.fixture(scope="session")
def wvnet_samples(data_dir: Path) -> Path:
    """The folder holding the 15 published WV-Net quicklooks, their tag CSV and reference embeddings."""
    folder = data_dir / "wvnet_upstream"
    if not (folder / "sample_data.csv").is_file():
        pytest.skip(f"the published WV-Net sample is not in {folder}")
    return folder


@pytest.fixture
def imagettes() -> xr.Dataset:
    return make_imagettes()


# ---- stores on a local disk and on a real S3 API (moto on 127.0.0.1) ------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """A moto S3 server on 127.0.0.1 (a free port) for this test process; the AWS environment points at it."""
    import socket

    server_module = pytest.importorskip("moto.server", reason="moto[server] is in the test extra")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}.items():
            mp.setenv(key, value)
        yield url
    server.stop()


@pytest.fixture(params=["local", "s3"])
def where(request, tmp_path):
    """``where(name)``: the URL of a new store called ``name``, on a local disk or in a fresh S3 bucket."""
    if request.param == "local":
        return lambda name: str(tmp_path / name)
    bucket = new_bucket(request.getfixturevalue("s3_endpoint"))
    return lambda name: f"s3://{bucket}/stores/{name}"


# ---- encoders -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def weights(tmp_path_factory) -> Path:
    """A seeded (0) random ResNet-18 state dict in torchvision format: a small, offline encoder, never written to."""
    from tests._factories import save_random_resnet18

    return save_random_resnet18(tmp_path_factory.mktemp("weights") / "resnet18.pt", seed=0)


# ---- generated WV SAFE products -------------------------------------------------------------------------------------


@pytest.fixture
def products(tmp_path: Path) -> tuple[Path, Path]:
    """A SAFE product folder of 3 imagettes and, in a folder of its own, a zipped product of 2 (another name)."""
    from tests._safe_factory import NAME, make_wv_safe

    sizes = [(200, 180), (190, 220), (210, 200)]
    folder, _ = make_wv_safe(tmp_path / "folder", sizes=sizes, seed=1)
    other = NAME.replace("ABCD", "EF01").replace("T130655", "T140655")
    zipped, _ = make_wv_safe(tmp_path / "zipped", name=other, sizes=sizes[:2], seed=2, as_zip=True)
    return folder, zipped


@pytest.fixture(scope="module")
def big_safe_product(tmp_path_factory):
    """A SAFE product folder of 2 imagettes large enough to multilook (1500 x 530, 1203 x 467), and its truth."""
    from tests._safe_factory import make_wv_safe

    return make_wv_safe(tmp_path_factory.mktemp("safe"), sizes=[(1500, 530), (1203, 467)], seed=3)


# ---- training runs and devices (model, training, inference and runtime tests) ---------------------------------------


@pytest.fixture(scope="session")
def few_waves() -> xr.Dataset:
    """16 synthetic imagettes (48 x 48, dask chunks of 8 before loading), in memory; never modified."""
    import xwvnet

    return xwvnet.synthetic.imagettes(16, seed=0, size=(48, 48), chunks=8).load()


@pytest.fixture(scope="session")
def finished_run(few_waves, tmp_path_factory) -> Path:
    """A finished 2-step training run on ``few_waves`` (do not modify: copy what a test damages)."""
    from tests._training import TINY_CPU
    from xwvnet.training import train

    out = tmp_path_factory.mktemp("finished")
    train(few_waves, out, steps=2, seed=0, **TINY_CPU)
    return out


@pytest.fixture
def no_gpu(monkeypatch) -> None:
    """This machine seen as one without a visible CUDA GPU: ``torch.cuda.is_available()`` answers False (the run
    context asks it at each call), so the no-GPU errors are checked on every machine."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
