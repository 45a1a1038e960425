"""ONE registry of public files: the sample data and the published weights, fetched with pooch and hash-checked.

Every file has a key (its place in the cache and in a mirror), an expected hash and, where it has one, a pinned URL.
:func:`fetch` looks in the mirror named by ``XWVNET_DATA_DIR`` (a folder laid out like the keys:
``wvnet_upstream/sample_data.csv`` ...), then in the cache (``XWVNET_CACHE``, else pooch's per-user cache for
xwvnet), and only then downloads with :func:`pooch.retrieve` into the cache. Whatever the source, the file is
checked before it is returned: by pooch (``known_hash``, :func:`pooch.file_hash`) for SHA-256 pins, and by one small
custom step for the git blob id that pins the WV-Net weights. Offline, the error names the URL and where to place
the file.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import pooch

from .errors import InvalidArgumentError, UnavailableError, UnknownKeyError

WVNET_COMMIT = "7be8a992ff59c5e64a961631351f22497395f95e"
WVNET_BASE_URL = f"https://github.com/hawaii-ai/WV-Net/raw/{WVNET_COMMIT}/assets/"
#: registry keys of the published weights
WVNET_WEIGHTS = "wvnet_resnet50_weights.pt"
IMAGENET_RESNET50 = "resnet50-0676ba61.pth"

# OceanSAR-1 (Kerdreux et al. 2025, arXiv:2504.06962) on the Hugging Face hub: THE pins of its files are these lines.
# The hub serves a file at a commit as https://huggingface.co/<repo>/resolve/<commit>/<file>; its "Files and versions"
# page lists the commit and each file's SHA-256. They are NOT recorded yet (this was written without network access):
# with OCEANSAR1_REVISION None nothing is downloaded, and "sha256:" without a digest hashes a file placed by hand
# (the digest reaches the embeddings' attributes) without checking it. Pin them by filling in the commit and the two
# digests; everything else follows.
OCEANSAR1_REPO = "galeio-research/OceanSAR-1"
OCEANSAR1_REVISION: str | None = None
OCEANSAR1_CONFIG = "oceansar1/config.json"
OCEANSAR1_WEIGHTS = "oceansar1/model.safetensors"
OCEANSAR1_SHA256: dict[str, str] = {OCEANSAR1_CONFIG: "", OCEANSAR1_WEIGHTS: ""}
#: "sha256:" with no digest: a registered file whose hash is not pinned yet (see :func:`is_pinned`)
UNPINNED = "sha256:"

#: THE registry: file key (its place in the cache and in a mirror) -> expected hash. ``sha256:<hex>`` is pooch's own
#: ``known_hash`` format; ``git-sha1:<hex>`` (a git blob id, how GitHub pins the WV-Net weights) and
#: ``sha256-prefix:<hex>`` (the prefix torchvision puts in its file names) are checked by :func:`check_hash`.
REGISTRY: dict[str, str] = {
    "wvnet_upstream/s1a-wv1-QL-vv-20190213t130655-20190213t130658-025911-02e29d-095.png": "sha256:fc298e73e37ea34d03bb7b7ab82a7eb7cb4fea69a81df504a8db40f6427298aa",
    "wvnet_upstream/s1a-wv1-QL-vv-20190220t082228-20190220t082231-026010-02e61f-011.png": "sha256:e5aca938f05aba40edbeb8229cb4183ae245896a0b73321e111a4e88cf7c7202",
    "wvnet_upstream/s1a-wv1-QL-vv-20190302t112956-20190302t112959-026158-02eb64-043.png": "sha256:d66e525880e3e58f1501283065e84b3d23db90eefc63b879ba4f8ed529503f25",
    "wvnet_upstream/s1a-wv1-QL-vv-20190317t204712-20190317t204715-026382-02f3a8-075.png": "sha256:d8abad34d2d9efbc2ed3a2040059d7ec070726df8464de669cf749022b95ba36",
    "wvnet_upstream/s1a-wv1-QL-vv-20190728t180725-20190728t180727-028320-03332d-061.png": "sha256:c0dcbc7c954d1b39d818aef5adf9d9a00779adcf444a7cb823793b7226b491a9",
    "wvnet_upstream/s1a-wv1-QL-vv-20190730t055109-20190730t055112-028342-0333dd-081.png": "sha256:f3405d12c10502e12477b46c51be8b41f8897e61ba137230c450561a09c812b1",
    "wvnet_upstream/s1a-wv1-QL-vv-20190813t141121-20190813t141124-028551-033a9f-023.png": "sha256:6a17223749f4a9916745e4bdc488fe430ec209c9cf00df3ed8a5418c9b979609",
    "wvnet_upstream/s1a-wv1-QL-vv-20191120t154256-20191120t154259-029996-036c8f-101.png": "sha256:067436a90793565ef75be98ca5331169b4b8d84584b273b41de1c61e875fee9e",
    "wvnet_upstream/s1a-wv1-QL-vv-20191224t172029-20191224t172032-030493-037dc9-031.png": "sha256:e6964419515b71bddb67a77bf16afcbf288c78885562b3482e91434dabb13492",
    "wvnet_upstream/s1a-wv1-QL-vv-20191225t202014-20191225t202017-030509-037e67-011.png": "sha256:dbca5d13a5e4407fa8ae1f3d8c6aaa9c23cceeffdc250d9edc6e2a98c2cd94f9",
    "wvnet_upstream/s1a-wv2-QL-vv-20190127t034810-20190127t034813-025657-02d985-058.png": "sha256:c5ebbbd3f223e226322355f17b9af303dd073eaefba3d9a3474cfeec67daebfe",
    "wvnet_upstream/s1a-wv2-QL-vv-20190929t033915-20190929t033918-029230-03520d-056.png": "sha256:a8c8bbe44bf9e4193ffe1516b91ee6b3906e15fd7706f287664dbcebcf740ad8",
    "wvnet_upstream/s1a-wv2-QL-vv-20190929t065652-20190929t065655-029232-035222-066.png": "sha256:d98180221ec0a88b2253d0ed3cf27d36906ecea8c22cb712cf4b6d4c84754c0a",
    "wvnet_upstream/s1a-wv2-QL-vv-20191013t033709-20191013t033712-029434-035914-050.png": "sha256:9f5306fc7414ec3b6ab9ccbc0d44c23481a00b65c2f40fd3033c75661a7fc5ad",
    "wvnet_upstream/s1a-wv2-QL-vv-20191221t142622-20191221t142625-030447-037c33-018.png": "sha256:7d4db7ab8a15b5adc67e3d6078e858745ce4a49b4c7c6acaeffcec4aefe06b7b",
    "wvnet_upstream/sample_data.csv": "sha256:48281ed16010e93d576a19e8866a46b5d853d7b0c6d1f4cf3b6f30ff6464dab5",
    "wvnet_upstream/valid_embs.npy": "sha256:8f352be49295b5729c1666b19ef0a311a22afc51967d40b0d348b280e748e003",
    "era5/era5-2mt-2019-03-uk.grib": "sha256:e5e82609f0e28e84822852e15d20c88dbb4b142a30264a7e6f87b9b5c7501df9",
    "era5/era5_2t_1.nc": "sha256:ead2168f8a444743ed196a4015c40c39486f8ad131d49b8216c2d91adbbe737a",
    "ww3/LOPS_WW3-GLOB-30M_202302_trck.nc": "sha256:713277c33ce03d3a22faefb63a65341c6511d64768cabad2b710449605361d96",
    "ocean_masks/basin_mask.nc": "sha256:0691944602267c1063e82a45e2150372031afa3f223b38e0cf846b81d0b90a1e",
    "s1_wv/s1a-wv2-ocn-vv-20260112t045817-20260112t045820-062729-07ddb1-036.nc": "sha256:e6a8f1c860b4594c1d69d33514c187b54218400c99227ea8712a98227d14056e",
    "s1_wv/S1B_WV_SLC__1SSV_20210403T083025_20210403T084452_026300_032390_D542.SAFE/manifest.safe": "sha256:4f5cee802752962c5a44981014a138c8d4c3081a8c9821641e3141bbad328642",
    "insitu/AR_TS_MO_A-Sulafjorden_20230820.nc": "sha256:0a9e0d50bd31aac9e423bc7c94c8d5f19727db58dc793145120cd58d51cde409",
    "altimeter/global_vavh_l3_rt_s3b_20220201T000000_20220201T030000_20220630T215237.nc": "sha256:2e303e0754438e10e5cabc7c8de0195ed3a87884aae893368a671d78af5ca707",
    "altimeter/global_vavh_l3_rt_s3b_20220201T030000_20220201T060000_20220630T214527.nc": "sha256:4f8effd08b33662fff9e19d43ef86f99eb5e81eb010209dfc6db4b2f3da98a1c",
    "altimeter/global_vavh_l3_rt_s3b_20220201T060000_20220201T090000_20220630T214537.nc": "sha256:254e8230a73e8205cd2812a21975bc739d07bd9910fbcabcdae63fd5179fe93d",
    "altimeter/global_vavh_l3_rt_s3b_20220201T090000_20220201T120000_20220630T214910.nc": "sha256:0f8ccc65a01c3f81738b6ae8cd9f1ca668edd083b4a5e81c2e4626da82d3daee",
    "altimeter/global_vavh_l3_rt_s3b_20220201T120000_20220201T150000_20220630T215128.nc": "sha256:9d757264674887bd603843a86591c6050927169365ab0b23effd7d58686781db",
    "altimeter/global_vavh_l3_rt_s3b_20220201T150000_20220201T180000_20220630T215045.nc": "sha256:cb4b3c36f600e8370f9796273ee09b8bd7d14e4335d0f85169048114ba8809e8",
    "altimeter/global_vavh_l3_rt_s3b_20220201T180000_20220201T210000_20220630T215105.nc": "sha256:97cb62f1634bb1bc509ca355010afa086780caa649ee754038cc712e734ce52b",
    "altimeter/global_vavh_l3_rt_s3b_20220201T210000_20220202T000000_20220630T215305.nc": "sha256:656f64f50aeefeecf5d5d883791d4bf2c8153356da9f245326c0b8a074a24249",
    "wavespectra/ndbc/44004w2000.txt": "sha256:e32aafc0f7a4007a2f4b7d27a77680392a7009f210d09bcff780a3537afb2670",
    "wavespectra/ndbc/41010w2019part.txt.gz": "sha256:380b20dc1add2bc3bbf6a3c606fd5b8999076c57c16d57167ce18bb05a457187",
    "wavespectra/ndbc/41010.data_spec": "sha256:ee6630d6cb8387668ff32e941ef24a9cb8d2ffd7b43da45b20e9c4cf4d8936f9",
    "wavespectra/ndbc/41010.spec": "sha256:cfaabd9009219d7be67a53710715f753b7921b139968a88f7ccfe8d5134015b5",
    "wavespectra/ww3station.spec": "sha256:6b4ffb6c4851db901a024df6d0e70e97eaaa897b63591f1191bcfb2dd7b12cc1",
    "wavespectra/swanfile.spec": "sha256:861803e2b5f22d721ead86a75cda4fc5c5e6cdc6497c1c9065595be03e59fe10",
    "modelskill/SW/HKNA_Hm0.nc": "sha256:3d84967133442f9ffa3a2d18e792a3124d669ee20f21c75c13e7de4373f81971",
    "modelskill/SW/CMEMS_DutchCoast_2017-10-28.nc": "sha256:bed8a8ac60f58de7e96e6b58d2177a84aa2abb0567f6a33d189c87a3dd7f6361",
    "modelskill/SW/CMEMS_DutchCoast_2017-10-29.nc": "sha256:862e992f175c2dced1882dbd4c346352b48af2fb3d48d7bced4b8277ca0d6129",
    "modelskill/SW/ERA5_DutchCoast.nc": "sha256:ca6035db276bc936c13cf92cd23b6b343ea7690b7a3a5aaaff4d8208f78cb38f",
    "cfgrib/ds.waveh.5.grib": "sha256:488bc02f893fa0900081d161d8a74c1d333815140d89c701634ed8966695e553",
    WVNET_WEIGHTS: "git-sha1:1f2bb01893b41c357e514256681ce682c4003d14",
    IMAGENET_RESNET50: "sha256-prefix:0676ba61",
    **{key: f"sha256:{digest}" for key, digest in OCEANSAR1_SHA256.items()},
}

#: wave files from the test suites of wavespectra (NDBC, WAVEWATCH III and SWAN text) and modelskill (DHI point
#: series with scalar x/y, CMEMS MFWAM and ERA5 wave fields), pinned at one commit each
WAVESPECTRA_BASE_URL = "https://raw.githubusercontent.com/wavespectra/wavespectra/82c7cb95de59c1db34229b5c534725ab3f36fa76/"
MODELSKILL_BASE_URL = "https://raw.githubusercontent.com/DHI/modelskill/54664de75d1abcb25bc0bea5e9b42307c28f2f40/"
#: cfgrib's test files: an NWS NDFD GRIB2 field of wind-wave height (shww) on 4.5 million points
CFGRIB_BASE_URL = "https://raw.githubusercontent.com/ecmwf/cfgrib/79a937b0845564d261ac3c379fbf4cfb3f7c9d5a/"
#: pinned public URL of each file that has one (the others come from a mirror only)
URLS: dict[str, str] = {
    name: WVNET_BASE_URL + name.split("/", 1)[1] for name in REGISTRY if name.startswith("wvnet_upstream/")
}
URLS.update(
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
        "insitu/AR_TS_MO_A-Sulafjorden_20230820.nc": "https://github.com/bohlinger/wavy/raw/364cb38d117d5c8e870457bf4fb8bedd82930cad/tests/data/"
        "insitu/daily/Sulafjorden/AR_TS_MO_A-Sulafjorden_20230820.nc",
        "altimeter/global_vavh_l3_rt_s3b_20220201T000000_20220201T030000_20220630T215237.nc": "https://github.com/bohlinger/wavy/raw/364cb38d117d5c8e870457bf4fb8bedd82930cad/tests/data/"
        "L3/s3b/global_vavh_l3_rt_s3b_20220201T000000_20220201T030000_20220630T215237.nc",
        "altimeter/global_vavh_l3_rt_s3b_20220201T030000_20220201T060000_20220630T214527.nc": "https://github.com/bohlinger/wavy/raw/364cb38d117d5c8e870457bf4fb8bedd82930cad/tests/data/"
        "L3/s3b/global_vavh_l3_rt_s3b_20220201T030000_20220201T060000_20220630T214527.nc",
        "altimeter/global_vavh_l3_rt_s3b_20220201T060000_20220201T090000_20220630T214537.nc": "https://github.com/bohlinger/wavy/raw/364cb38d117d5c8e870457bf4fb8bedd82930cad/tests/data/"
        "L3/s3b/global_vavh_l3_rt_s3b_20220201T060000_20220201T090000_20220630T214537.nc",
        "altimeter/global_vavh_l3_rt_s3b_20220201T090000_20220201T120000_20220630T214910.nc": "https://github.com/bohlinger/wavy/raw/364cb38d117d5c8e870457bf4fb8bedd82930cad/tests/data/"
        "L3/s3b/global_vavh_l3_rt_s3b_20220201T090000_20220201T120000_20220630T214910.nc",
        "altimeter/global_vavh_l3_rt_s3b_20220201T120000_20220201T150000_20220630T215128.nc": "https://github.com/bohlinger/wavy/raw/364cb38d117d5c8e870457bf4fb8bedd82930cad/tests/data/"
        "L3/s3b/global_vavh_l3_rt_s3b_20220201T120000_20220201T150000_20220630T215128.nc",
        "altimeter/global_vavh_l3_rt_s3b_20220201T150000_20220201T180000_20220630T215045.nc": "https://github.com/bohlinger/wavy/raw/364cb38d117d5c8e870457bf4fb8bedd82930cad/tests/data/"
        "L3/s3b/global_vavh_l3_rt_s3b_20220201T150000_20220201T180000_20220630T215045.nc",
        "altimeter/global_vavh_l3_rt_s3b_20220201T180000_20220201T210000_20220630T215105.nc": "https://github.com/bohlinger/wavy/raw/364cb38d117d5c8e870457bf4fb8bedd82930cad/tests/data/"
        "L3/s3b/global_vavh_l3_rt_s3b_20220201T180000_20220201T210000_20220630T215105.nc",
        "altimeter/global_vavh_l3_rt_s3b_20220201T210000_20220202T000000_20220630T215305.nc": "https://github.com/bohlinger/wavy/raw/364cb38d117d5c8e870457bf4fb8bedd82930cad/tests/data/"
        "L3/s3b/global_vavh_l3_rt_s3b_20220201T210000_20220202T000000_20220630T215305.nc",
        WVNET_WEIGHTS: f"https://github.com/hawaii-ai/WV-Net/raw/{WVNET_COMMIT}/model_weights/{WVNET_WEIGHTS}",
        IMAGENET_RESNET50: f"https://download.pytorch.org/models/{IMAGENET_RESNET50}",
    }
)
URLS.update({
    "wavespectra/ndbc/44004w2000.txt": WAVESPECTRA_BASE_URL + "tests/sample_files/ndbc/44004w2000.txt",
    "wavespectra/ndbc/41010w2019part.txt.gz": WAVESPECTRA_BASE_URL + "tests/sample_files/ndbc/41010w2019part.txt.gz",
    "wavespectra/ndbc/41010.data_spec": WAVESPECTRA_BASE_URL + "tests/sample_files/ndbc/41010.data_spec",
    "wavespectra/ndbc/41010.spec": WAVESPECTRA_BASE_URL + "tests/sample_files/ndbc/41010.spec",
    "wavespectra/ww3station.spec": WAVESPECTRA_BASE_URL + "tests/sample_files/ww3station.spec",
    "wavespectra/swanfile.spec": WAVESPECTRA_BASE_URL + "tests/sample_files/swanfile.spec",
    "modelskill/SW/HKNA_Hm0.nc": MODELSKILL_BASE_URL + "tests/testdata/SW/HKNA_Hm0.nc",
    "cfgrib/ds.waveh.5.grib": CFGRIB_BASE_URL + "tests/sample-data/ds.waveh.5.grib",
    "modelskill/SW/CMEMS_DutchCoast_2017-10-28.nc": MODELSKILL_BASE_URL + "tests/testdata/SW/CMEMS_DutchCoast_2017-10-28.nc",
    "modelskill/SW/CMEMS_DutchCoast_2017-10-29.nc": MODELSKILL_BASE_URL + "tests/testdata/SW/CMEMS_DutchCoast_2017-10-29.nc",
    "modelskill/SW/ERA5_DutchCoast.nc": MODELSKILL_BASE_URL + "tests/testdata/SW/ERA5_DutchCoast.nc",
})
if OCEANSAR1_REVISION and all(OCEANSAR1_SHA256.values()):  # only pinned files are ever downloaded
    URLS.update({key: f"https://huggingface.co/{OCEANSAR1_REPO}/resolve/{OCEANSAR1_REVISION}/{key.split('/', 1)[1]}"
                 for key in OCEANSAR1_SHA256})
#: where to get files by hand that have no pinned URL yet: file key -> the page that publishes them
SOURCE_PAGES: dict[str, str] = {key: f"https://huggingface.co/{OCEANSAR1_REPO}" for key in OCEANSAR1_SHA256}
#: files that only work together with others (a hub checkpoint's weights and its config.json): key -> the others,
#: fetched with it (:func:`fetch_all`)
COMPANIONS: dict[str, tuple[str, ...]] = {OCEANSAR1_WEIGHTS: (OCEANSAR1_CONFIG,)}


#: other places in a mirror where a file may sit (older mirror layouts)
MIRROR_ALIASES: dict[str, tuple[str, ...]] = {
    WVNET_WEIGHTS: (f"wvnet_upstream/{WVNET_WEIGHTS}", f"weights/{WVNET_WEIGHTS}"),
    IMAGENET_RESNET50: (f"weights/{IMAGENET_RESNET50}", f"imagenet/{IMAGENET_RESNET50}"),
}
_LABELS = {"sha256": "SHA-256", "sha256-prefix": "SHA-256 prefix", "git-sha1": "git blob id"}


class DataUnavailableError(UnavailableError, RuntimeError):
    """A registered file is neither in the mirror nor in the cache, and could not be downloaded (offline?)."""


class DataIntegrityError(DataUnavailableError):
    """A registered file does not match its hash: corrupt, truncated, or not the published file."""


# ---- settings -----------------------------------------------------------------------------------------------
def data_dir() -> Path | None:
    """The local mirror named by ``XWVNET_DATA_DIR``, or ``None`` when it is unset or absent.

    Returns
    -------
    pathlib.Path or None
        A folder laid out like the registry keys; files there are used (still hash-checked) instead of downloads.
    """
    value = os.environ.get("XWVNET_DATA_DIR", "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_dir() else None


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """Where downloads are kept: ``path`` if given, else ``XWVNET_CACHE``, else pooch's per-user cache for xwvnet.

    Parameters
    ----------
    path : str or os.PathLike, optional
        An explicit cache folder (overrides the environment).

    Returns
    -------
    pathlib.Path
        The folder (it may not exist yet).

    Examples
    --------
    >>> str(cache_dir("/tmp/xwvnet-cache"))
    '/tmp/xwvnet-cache'
    """
    if path is not None:
        return Path(path).expanduser()
    value = os.environ.get("XWVNET_CACHE", "").strip()
    return Path(value).expanduser() if value else Path(pooch.os_cache("xwvnet"))


# ---- integrity ----------------------------------------------------------------------------------------------
def git_blob_sha1(path: str | os.PathLike) -> str:
    """Git's blob id of a file: SHA-1 of ``b"blob <size>\\0"`` followed by the content.

    GitHub pins a file at a commit by this id, so it checks the WV-Net weights against the repository itself.
    pooch's hashes cover the content only, hence this one custom step.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    str
        40 hex digits, as ``git hash-object`` prints them.

    Examples
    --------
    >>> from pathlib import Path
    >>> _ = Path("/tmp/hello.txt").write_bytes(b"hello\\n")
    >>> git_blob_sha1("/tmp/hello.txt")
    'ce013625030ba8dba906f756967f9e9ca394464a'
    """
    path = Path(path)
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_CHECKED: dict[tuple[str, int, int, str | None], str] = {}
_CHECKED_LOCK = threading.Lock()


def check_hash(path: str | os.PathLike, expected: str | None) -> str:
    """Check a file against its registered hash and return the hash that provenance records.

    Results are remembered per (path, size, modification time) in this process, so dask workers that check the
    same weights for every task hash them once.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    expected : str or None
        ``"sha256:<hex>"``, ``"sha256-prefix:<hex>"``, ``"git-sha1:<hex>"``, or ``None`` to only hash the file.

    Returns
    -------
    str
        ``"git-sha1:<40 hex>"`` for a git pin, else ``"sha256:<64 hex>"`` (the full digest, also for a prefix pin).

    Raises
    ------
    DataIntegrityError
        If the file does not match (the message names the file, both hashes, and what to do).
    ValueError
        If ``expected`` is of an unknown kind.
    """
    path = Path(path)
    stat = path.stat()
    memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, expected)
    with _CHECKED_LOCK:
        if memo in _CHECKED:
            return _CHECKED[memo]
    kind, _, value = (expected or "sha256:").partition(":")
    value = value.lower()
    if kind == "git-sha1":
        digest = git_blob_sha1(path)
        ok, recorded = digest == value, f"git-sha1:{digest}"
    elif kind in ("sha256", "sha256-prefix"):
        digest = pooch.file_hash(str(path), alg="sha256")
        ok = digest.startswith(value) if kind == "sha256-prefix" else (not value or digest == value)
        recorded = f"sha256:{digest}"
    else:
        raise InvalidArgumentError(f"unknown hash kind {kind!r} in {expected!r}; expected sha256, sha256-prefix or git-sha1.")
    if not ok:
        raise DataIntegrityError(
            f"{path} does not match its registered {_LABELS[kind]} (expected {expected}, found {recorded}): the "
            "integrity check failed, the file is corrupt or not the published one. Delete it and fetch it again, "
            "or replace it with the published file (or unset XWVNET_DATA_DIR if it comes from a mirror)."
        )
    with _CHECKED_LOCK:
        _CHECKED[memo] = recorded
    return recorded


# ---- lookup and download ------------------------------------------------------------------------------------
def _entry(name: str) -> str:
    if name not in REGISTRY:
        raise UnknownKeyError(f"unknown sample file {name!r}; known files: {sorted(REGISTRY)}")
    return REGISTRY[name]


def local_copy(
    name: str, *, cache: str | os.PathLike | None = None, search: Sequence[str | os.PathLike] = ()
) -> Path | None:
    """The local copy of a registered file, if there is one; never downloads, never checks.

    Parameters
    ----------
    name : str
        A registry key.
    cache : str or os.PathLike, optional
        The cache folder (default :func:`cache_dir`).
    search : sequence of path-like, default ()
        Further folders that may hold the file under its base name (e.g. torch's hub cache for ImageNet weights).

    Returns
    -------
    pathlib.Path or None
        The first of: the mirror (the key, then its :data:`MIRROR_ALIASES`), the cache, the ``search`` folders.

    Raises
    ------
    KeyError
        If ``name`` is not registered.
    """
    _entry(name)
    candidates = []
    mirror = data_dir()
    if mirror is not None:
        candidates += [mirror / name, *(mirror / alias for alias in MIRROR_ALIASES.get(name, ()))]
    candidates.append(cache_dir(cache) / name)
    candidates += [Path(folder).expanduser() / Path(name).name for folder in search]
    return next((path for path in candidates if path.is_file()), None)


def _offline_message(name: str, url: str | None, target: Path, why: str) -> str:
    places = " or ".join(repr(p) for p in (name, *MIRROR_ALIASES.get(name, ())))
    mirror = f"or set XWVNET_DATA_DIR to a mirror folder holding it as {places}"
    if url is None:
        return (
            f"{name} has no public URL to download from; place it at {target} (or set XWVNET_CACHE to another "
            f"cache), {mirror} (laid out like the registry keys)."
        )
    return (
        f"could not fetch {name} from {url} ({why}). Offline? Download {url} by hand and place it at {target} "
        f"(or set XWVNET_CACHE to its folder), {mirror}."
    )


def fetch(
    name: str,
    *,
    cache: str | os.PathLike | None = None,
    search: Sequence[str | os.PathLike] = (),
    download: bool = True,
) -> Path:
    """The checked local path of a registered file: from the mirror, the cache, or its pinned URL.

    Parameters
    ----------
    name : str
        A registry key (e.g. ``"wvnet_upstream/sample_data.csv"`` or ``WVNET_WEIGHTS``).
    cache : str or os.PathLike, optional
        The cache folder (default :func:`cache_dir`: ``XWVNET_CACHE`` or pooch's per-user cache).
    search : sequence of path-like, default ()
        Further folders to look in before downloading (see :func:`local_copy`).
    download : bool, default True
        Whether to download a file that is not here.

    Returns
    -------
    pathlib.Path
        The file, checked against its registered hash.

    Raises
    ------
    KeyError
        If ``name`` is not registered.
    DataIntegrityError
        If the file found or downloaded does not match its hash (a failed download is deleted; a file you placed is
        left for you to replace).
    DataUnavailableError
        If it is nowhere here and cannot be downloaded (offline, no public URL, or ``download=False``); the
        message names the URL and where to place the file.

    Examples
    --------
    >>> import pandas as pd
    >>> tags = pd.read_csv(fetch("wvnet_upstream/sample_data.csv"))  # doctest: +SKIP
    """
    expected = _entry(name)
    found = local_copy(name, cache=cache, search=search)
    if found is not None:
        check_hash(found, expected)
        return found
    url = URLS.get(name)
    target = cache_dir(cache) / name
    if url is None or not download:
        raise DataUnavailableError(_offline_message(name, url, target, "downloads are off"))
    # pooch checks SHA-256 pins itself while downloading; the other kinds are checked right after
    known_hash = expected if expected.startswith("sha256:") else None
    try:
        path = Path(pooch.retrieve(url, known_hash, fname=target.name, path=target.parent, progressbar=False))
    except ValueError as err:  # pooch: the downloaded file does not match known_hash (it is not kept)
        if "hash" not in str(err).lower():
            raise DataUnavailableError(_offline_message(name, url, target, f"{type(err).__name__}: {err}")) from err
        raise DataIntegrityError(
            f"the download of {name} from {url} does not match its registered hash {expected} ({err}); try again "
            f"later, or place the published file at {target}."
        ) from err
    except Exception as err:  # network errors come from requests/urllib, with many types
        raise DataUnavailableError(_offline_message(name, url, target, f"{type(err).__name__}: {err}")) from err
    try:
        check_hash(path, expected)
    except DataIntegrityError:
        path.unlink(missing_ok=True)  # a download we made: never leave a bad file in the cache
        raise
    return path


def is_pinned(name: str) -> bool:
    """Whether a registered file's hash is pinned (a digest, not the bare :data:`UNPINNED` marker).

    Parameters
    ----------
    name : str
        A registry key.

    Returns
    -------
    bool

    Raises
    ------
    KeyError
        If ``name`` is not registered.

    Examples
    --------
    >>> is_pinned(WVNET_WEIGHTS)
    True
    """
    return _entry(name) != UNPINNED


def fetch_all(
    names: Sequence[str],
    *,
    cache: str | os.PathLike | None = None,
    download: bool = True,
) -> list[Path]:
    """The checked local paths of files that only work together, or ONE error naming every one that is missing.

    Parameters
    ----------
    names : sequence of str
        Registry keys (e.g. a hub checkpoint's ``config.json`` and its weights).
    cache : str or os.PathLike, optional
        The cache folder (default :func:`cache_dir`).
    download : bool, default True
        Whether to download files that are not here.

    Returns
    -------
    list of pathlib.Path
        In the order of ``names``, each checked against its registered hash.

    Raises
    ------
    KeyError
        If a name is not registered.
    DataIntegrityError
        If a file found or downloaded does not match its hash.
    DataUnavailableError
        If some are nowhere here and cannot be downloaded: one line naming each missing file, where to get it (its
        pinned URL, or the page that publishes it when no URL is pinned yet) and the folder to put it in.
    """
    found: list[Path] = []
    missing: list[tuple[str, str]] = []
    for name in names:
        try:
            found.append(fetch(name, cache=cache, download=download))
        except DataIntegrityError:
            raise
        except DataUnavailableError as err:
            missing.append((name, str(err)))
    if not missing:
        return found
    folders = sorted({str((cache_dir(cache) / name).parent) for name, _ in missing})
    sources = [URLS.get(name) or SOURCE_PAGES.get(name) for name, _ in missing]
    files = " and ".join(Path(name).name for name, _ in missing)
    pinned = all(URLS.get(name) for name, _ in missing)
    how = (f"download {' and '.join(s for s in sources if s)}" if pinned else
           f"this xwvnet pins no revision of them yet, so it downloads nothing: download {files} from "
           f"{' and '.join(sorted({s for s in sources if s}))} ('Files and versions')")
    places = " and ".join(repr(name) for name, _ in missing)
    why = "downloads are off" if not download else ("offline?" if pinned else "no pinned URL")
    raise DataUnavailableError(
        f"{files} {'is' if len(missing) == 1 else 'are'} not here ({why}): {how} and put "
        f"{'it' if len(missing) == 1 else 'them'} in {' and '.join(folders)} (or set XWVNET_CACHE to another cache, "
        f"or XWVNET_DATA_DIR to a mirror holding {places})."
    )


def wvnet_sample() -> dict[str, object]:
    """The published WV-Net sample: 15 quicklooks, their tags and their reference embeddings.

    Returns
    -------
    dict
        ``"quicklooks"``: list of 15 PNG paths; ``"labels"``: the tag CSV path; ``"embeddings"``: the ``.npy``
        path of the published ResNet-50 embeddings (15 x 2048) of those quicklooks.

    Raises
    ------
    DataUnavailableError
        If a file is not here and cannot be downloaded.

    Examples
    --------
    >>> sample = wvnet_sample()  # doctest: +SKIP
    >>> len(sample["quicklooks"])  # doctest: +SKIP
    15
    """
    pngs = sorted(name for name in REGISTRY if name.startswith("wvnet_upstream/") and name.endswith(".png"))
    return {
        "quicklooks": [fetch(name) for name in pngs],
        "labels": fetch("wvnet_upstream/sample_data.csv"),
        "embeddings": fetch("wvnet_upstream/valid_embs.npy"),
    }
