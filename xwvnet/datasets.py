"""Public sample data, fetched with pooch at pinned URLs and checked by SHA-256; a local mirror is honoured.

Set ``XWVNET_DATA_DIR`` to a folder laid out like the registry keys (``wvnet_upstream/sample_data.csv`` ...) and
files are taken from there (still hash-checked) instead of downloaded. Downloads land in ``XWVNET_CACHE`` or
pooch's per-user cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import pooch

WVNET_COMMIT = "7be8a992ff59c5e64a961631351f22497395f95e"
WVNET_BASE_URL = f"https://github.com/hawaii-ai/WV-Net/raw/{WVNET_COMMIT}/assets/"

# file (as laid out in a mirror) -> sha256
REGISTRY: dict[str, str] = {
    "wvnet_upstream/s1a-wv1-QL-vv-20190213t130655-20190213t130658-025911-02e29d-095.png": "fc298e73e37ea34d03bb7b7ab82a7eb7cb4fea69a81df504a8db40f6427298aa",
    "wvnet_upstream/s1a-wv1-QL-vv-20190220t082228-20190220t082231-026010-02e61f-011.png": "e5aca938f05aba40edbeb8229cb4183ae245896a0b73321e111a4e88cf7c7202",
    "wvnet_upstream/s1a-wv1-QL-vv-20190302t112956-20190302t112959-026158-02eb64-043.png": "d66e525880e3e58f1501283065e84b3d23db90eefc63b879ba4f8ed529503f25",
    "wvnet_upstream/s1a-wv1-QL-vv-20190317t204712-20190317t204715-026382-02f3a8-075.png": "d8abad34d2d9efbc2ed3a2040059d7ec070726df8464de669cf749022b95ba36",
    "wvnet_upstream/s1a-wv1-QL-vv-20190728t180725-20190728t180727-028320-03332d-061.png": "c0dcbc7c954d1b39d818aef5adf9d9a00779adcf444a7cb823793b7226b491a9",
    "wvnet_upstream/s1a-wv1-QL-vv-20190730t055109-20190730t055112-028342-0333dd-081.png": "f3405d12c10502e12477b46c51be8b41f8897e61ba137230c450561a09c812b1",
    "wvnet_upstream/s1a-wv1-QL-vv-20190813t141121-20190813t141124-028551-033a9f-023.png": "6a17223749f4a9916745e4bdc488fe430ec209c9cf00df3ed8a5418c9b979609",
    "wvnet_upstream/s1a-wv1-QL-vv-20191120t154256-20191120t154259-029996-036c8f-101.png": "067436a90793565ef75be98ca5331169b4b8d84584b273b41de1c61e875fee9e",
    "wvnet_upstream/s1a-wv1-QL-vv-20191224t172029-20191224t172032-030493-037dc9-031.png": "e6964419515b71bddb67a77bf16afcbf288c78885562b3482e91434dabb13492",
    "wvnet_upstream/s1a-wv1-QL-vv-20191225t202014-20191225t202017-030509-037e67-011.png": "dbca5d13a5e4407fa8ae1f3d8c6aaa9c23cceeffdc250d9edc6e2a98c2cd94f9",
    "wvnet_upstream/s1a-wv2-QL-vv-20190127t034810-20190127t034813-025657-02d985-058.png": "c5ebbbd3f223e226322355f17b9af303dd073eaefba3d9a3474cfeec67daebfe",
    "wvnet_upstream/s1a-wv2-QL-vv-20190929t033915-20190929t033918-029230-03520d-056.png": "a8c8bbe44bf9e4193ffe1516b91ee6b3906e15fd7706f287664dbcebcf740ad8",
    "wvnet_upstream/s1a-wv2-QL-vv-20190929t065652-20190929t065655-029232-035222-066.png": "d98180221ec0a88b2253d0ed3cf27d36906ecea8c22cb712cf4b6d4c84754c0a",
    "wvnet_upstream/s1a-wv2-QL-vv-20191013t033709-20191013t033712-029434-035914-050.png": "9f5306fc7414ec3b6ab9ccbc0d44c23481a00b65c2f40fd3033c75661a7fc5ad",
    "wvnet_upstream/s1a-wv2-QL-vv-20191221t142622-20191221t142625-030447-037c33-018.png": "7d4db7ab8a15b5adc67e3d6078e858745ce4a49b4c7c6acaeffcec4aefe06b7b",
    "wvnet_upstream/sample_data.csv": "48281ed16010e93d576a19e8866a46b5d853d7b0c6d1f4cf3b6f30ff6464dab5",
    "wvnet_upstream/valid_embs.npy": "8f352be49295b5729c1666b19ef0a311a22afc51967d40b0d348b280e748e003",
    "era5/era5-2mt-2019-03-uk.grib": "e5e82609f0e28e84822852e15d20c88dbb4b142a30264a7e6f87b9b5c7501df9",
    "era5/era5_2t_1.nc": "ead2168f8a444743ed196a4015c40c39486f8ad131d49b8216c2d91adbbe737a",
    "ww3/LOPS_WW3-GLOB-30M_202302_trck.nc": "713277c33ce03d3a22faefb63a65341c6511d64768cabad2b710449605361d96",
    "ocean_masks/basin_mask.nc": "0691944602267c1063e82a45e2150372031afa3f223b38e0cf846b81d0b90a1e",
    "s1_wv/s1a-wv2-ocn-vv-20260112t045817-20260112t045820-062729-07ddb1-036.nc": "e6a8f1c860b4594c1d69d33514c187b54218400c99227ea8712a98227d14056e",
    "s1_wv/S1B_WV_SLC__1SSV_20210403T083025_20210403T084452_026300_032390_D542.SAFE/manifest.safe": "4f5cee802752962c5a44981014a138c8d4c3081a8c9821641e3141bbad328642",
}

# files without a pinned public URL of their own are available from a mirror only
_URLS: dict[str, str] = {
    name: WVNET_BASE_URL + name.split("/", 1)[1] for name in REGISTRY if name.startswith("wvnet_upstream/")
}
_URLS.update(
    {
        "era5/era5-2mt-2019-03-uk.grib": "https://github.com/pydata/xarray-data/raw/"
        "58de68cb45bcbd1557df11a92827758495481b4e/era5-2mt-2019-03-uk.grib",
        "era5/era5_2t_1.nc": "https://github.com/ecmwf/earthkit-data/raw/"
        "652c2c36a9830693174bc69d5acdf42a7b044f22/tests/data/era5_2t_1.nc",
        "ocean_masks/basin_mask.nc": "https://github.com/pydata/xarray-data/raw/"
        "58de68cb45bcbd1557df11a92827758495481b4e/basin_mask.nc",
        "ww3/LOPS_WW3-GLOB-30M_202302_trck.nc": "https://github.com/umr-lops/utils_xsarslc_l1b/raw/"
        "026284ae264f5911437949c8ceeed950fa4d187b/assests/LOPS_WW3-GLOB-30M_202302_trck.nc",
        "s1_wv/S1B_WV_SLC__1SSV_20210403T083025_20210403T084452_026300_032390_D542.SAFE/manifest.safe": (
            "https://github.com/bopen/xarray-sentinel/raw/319f831273187084e559df2fc9057735a96289d9/tests/data/"
            "S1B_WV_SLC__1SSV_20210403T083025_20210403T084452_026300_032390_D542.SAFE/manifest.safe"
        ),
    }
)


class DataUnavailableError(RuntimeError):
    """A sample file is neither in the mirror nor in the cache, and could not be downloaded."""


def data_dir() -> Path | None:
    """The local mirror named by ``XWVNET_DATA_DIR``, or ``None`` when it is unset or absent."""
    value = os.environ.get("XWVNET_DATA_DIR", "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_dir() else None


def cache_dir() -> Path:
    """Where downloads are kept: ``XWVNET_CACHE`` or pooch's per-user cache folder for xwvnet."""
    value = os.environ.get("XWVNET_CACHE", "").strip()
    return Path(value).expanduser() if value else Path(pooch.os_cache("xwvnet"))


def fetch(name: str) -> Path:
    """The local path of sample file ``name`` (a registry key), from the mirror, the cache or its public URL."""
    if name not in REGISTRY:
        raise KeyError(f"unknown sample file {name!r}; known files: {sorted(REGISTRY)}")
    known_hash = f"sha256:{REGISTRY[name]}"
    mirror = data_dir()
    if mirror is not None and (mirror / name).is_file():
        path = mirror / name
        digest = pooch.file_hash(str(path))
        if digest != REGISTRY[name]:
            raise DataUnavailableError(
                f"{path} does not match its registered SHA-256 ({digest} != {REGISTRY[name]}); "
                "replace it with the published file or unset XWVNET_DATA_DIR."
            )
        return path
    url = _URLS.get(name)
    target = cache_dir() / name
    if url is None:
        raise DataUnavailableError(
            f"{name} has no public URL to download from; place it at {target} or in a mirror folder named by "
            "XWVNET_DATA_DIR (laid out like the registry keys)."
        )
    try:
        return Path(pooch.retrieve(url, known_hash, fname=target.name, path=target.parent, progressbar=False))
    except Exception as err:  # network errors come from requests, hash errors from pooch
        raise DataUnavailableError(
            f"could not fetch {name} from {url} ({type(err).__name__}: {err}). Offline? Download it by hand to "
            f"{target}, or set XWVNET_DATA_DIR to a mirror holding {name}."
        ) from err


def wvnet_sample() -> dict[str, object]:
    """The published WV-Net sample: 15 quicklook paths, their tag CSV and their reference embeddings (.npy)."""
    pngs = sorted(name for name in REGISTRY if name.startswith("wvnet_upstream/") and name.endswith(".png"))
    return {
        "quicklooks": [fetch(name) for name in pngs],
        "labels": fetch("wvnet_upstream/sample_data.csv"),
        "embeddings": fetch("wvnet_upstream/valid_embs.npy"),
    }
