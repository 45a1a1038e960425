"""Synthetic Sentinel-1 wave-mode imagettes with known sea state, for tests, benchmarks and the demo.

Why: the real sample is 15 quicklooks with no sea-state truth. Here every imagette comes with the significant wave
height, peak wavelength, wave direction, wind and air temperature that made it, so probes and retrieval can be
checked against a truth, and a million-imagette store can be generated for scaling work.

How, in one paragraph: a sea surface is drawn from a JONSWAP wavenumber spectrum with cos^2s spreading (random
phases, FFT synthesis on a ``pixel_size`` grid) and scaled to the exact ``hs``; it is imaged with the quasi-linear
SAR transfer (tilt modulation along range, velocity bunching along azimuth), a wind-dependent mean NRCS (a crude
CMOD-like law) plus a thermal noise floor, optional phenomena (wind streaks, micro-convective cells, rain cells,
biological slicks, low-wind patches, sea ice), an azimuth smearing whose width grows with the orbital-velocity
spread (so with Hs), multiplicative gamma speckle, and a 1%-99% percentile stretch to uint8 (as WV-Net quicklooks).

Determinism: scalar parameters come from a counter-based hash of (seed, imagette index, stream), and pixel noise
from a Philox generator keyed by (seed, index), so imagette ``i`` is the same whatever ``n`` or ``chunks``.
Creation is lazy: the metadata are vectorised numpy, the pixels one dask task per chunk.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from . import schema as S
from .errors import InvalidArgumentError

TAGS = ("WS", "MC", "RC", "BS", "LW", "SI")
"""Tag codes drawn here (a subset of the 21 WV-Net codes): wind streaks, micro-convective cells, rain cells,
biological slicks, low wind area, sea ice. An imagette with none of them shows pure ocean waves."""

PIXEL_SIZE = 40.0  # m: WV quicklooks are ~20 km at ~40-45 m pixels; 256 px here ~ 10 km
_G = 9.81
_MASK64 = (1 << 64) - 1
_T_START = np.datetime64("2015-01-01T00:00:00", "ns")
_T_STOP = np.datetime64("2025-01-01T00:00:00", "ns")
_S1B_LIFE = (np.datetime64("2016-04-25", "ns"), np.datetime64("2021-12-23", "ns"))
_ORBIT_EPOCH = {"s1a": np.datetime64("2014-04-03", "ns"), "s1b": np.datetime64("2016-04-25", "ns")}
_ORBIT_NS = 12 * 86400 * 10**9 / 175  # 175 orbits per 12-day repeat cycle
#: Where synthetic imagettes are placed: boxes (west, south, east, north, degrees) of open ocean, made by hand so
#: that each holds no land at all, not even an atoll (checked against Natural Earth's coastlines and a 1-degree
#: land mask, and against the small islands those miss: Azores, Canaries, Cape Verde, Mascarenes, Kerguelen,
#: Crozet, Heard, Bouvet, the Scotia arc, the atolls of the central Pacific, ...). The boxes do not overlap, so a
#: draw area-uniform over their union is area-uniform in each. They cover part of every ocean basin between 62S
#: and 71N, not all of the ocean: coastal seas, archipelagos and the tropical western Pacific are left out.
OCEAN_BOXES: tuple[tuple[float, float, float, float], ...] = (
    # North Pacific
    (-180.0, 30.0, -130.0, 50.0), (150.0, 30.0, 180.0, 44.0), (-150.0, 50.0, -137.0, 56.0),
    (-152.0, 15.0, -122.0, 30.0), (137.0, 12.0, 143.0, 24.0),
    # central and eastern tropical Pacific, between the atolls
    (172.0, 10.0, 180.0, 15.0), (-180.0, 2.0, -165.0, 15.0), (178.0, -5.0, 180.0, 10.0), (-180.0, -5.0, -178.0, 2.0),
    (-150.0, 0.0, -112.0, 15.0), (-130.0, -20.0, -95.0, 0.0),
    # South Pacific, Tasman Sea
    (-170.0, -40.0, -150.0, -30.0), (-140.0, -40.0, -85.0, -30.0), (-175.0, -57.0, -80.0, -40.0),
    (155.0, -42.0, 168.0, -33.0),
    # Southern Ocean, north of Antarctica and clear of the Scotia arc
    (-180.0, -62.0, -70.0, -57.0), (-70.0, -60.5, -48.0, -57.0), (-44.0, -62.0, -30.0, -57.0),
    (-24.0, -62.0, 180.0, -57.0),
    # South Atlantic
    (-32.0, -55.0, -12.0, -42.0), (5.0, -52.0, 30.0, -40.0), (-12.0, -32.0, 5.0, -18.0), (-27.0, -32.0, -12.0, -10.0),
    # tropical and North Atlantic, Norwegian and Labrador Seas
    (-28.0, -5.0, -16.0, 5.0), (-50.0, 8.0, -30.0, 18.0), (-60.0, 20.0, -30.0, 30.0), (-62.0, 33.0, -35.0, 42.0),
    (-45.0, 43.0, -20.0, 55.0), (-20.0, 36.0, -10.5, 50.0), (-4.0, 62.5, 4.0, 71.0), (-56.0, 55.5, -50.0, 60.0),
    # seas around the British Isles: North Sea, Celtic Sea
    (-0.5, 55.0, 6.0, 57.5), (-10.5, 50.5, -5.6, 51.2),
    # Indian Ocean
    (65.0, -35.0, 108.0, -15.0), (40.0, -44.0, 75.0, -36.0), (80.0, -45.0, 112.0, -35.0), (80.0, -57.0, 140.0, -45.0),
    (60.0, 8.0, 70.0, 18.0), (84.0, 8.0, 90.0, 16.0),
)

# one hash stream per scalar parameter, so that adding a parameter never changes the others
_STREAMS = {name: k for k, name in enumerate((
    "time", "mission", "pass", "heading", "incidence", "wind_speed", "wind_direction", "development", "swell",
    "peak_wavelength", "wave_direction", "spreading", "gamma", "t2m_a", "t2m_b", "valid_lines", "valid_samples",
    "WS", "MC", "RC", "BS", "SI", "lat", "lon", "box",
))}
_LOOKS = 8.0  # equivalent number of looks of the quicklook speckle


# --------------------------------------------------------------------------- counter-based randomness

def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _uniform(seed: int, index: np.ndarray, stream: str, sub: int = 0) -> np.ndarray:
    """Uniform [0, 1) numbers, one per index, that depend only on (seed, index, stream, sub)."""
    key = ((seed * 0x9E3779B97F4A7C15) ^ ((_STREAMS[stream] * 64 + sub + 1) * 0xD1B54A32D192ED03)) & _MASK64
    x = _mix(_mix(index.view(np.uint64) ^ np.uint64(key)) + np.uint64(0x9E3779B97F4A7C15))
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _normal(seed: int, index: np.ndarray, stream: str) -> np.ndarray:
    """Standard normal numbers per index (Box-Muller on two hash streams)."""
    u1 = 1.0 - _uniform(seed, index, stream, 0)
    u2 = _uniform(seed, index, stream, 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2 * np.pi * u2)


def _pixel_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of imagette ``index``'s pixel noise: Philox keyed by (seed, index)."""
    return np.random.Generator(np.random.Philox(key=(seed << 64) | int(index)))


# --------------------------------------------------------------------------- per-imagette parameters

def _in_ocean(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """True where a position lies inside one of :data:`OCEAN_BOXES` (the synthetic ocean mask)."""
    b = np.asarray(OCEAN_BOXES, dtype=float)
    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    inside = ((lon[..., None] >= b[:, 0]) & (lon[..., None] <= b[:, 2])
              & (lat[..., None] >= b[:, 1]) & (lat[..., None] <= b[:, 3]))
    return inside.any(-1)


def _ocean_in(region: tuple[float, float, float, float] | None) -> np.ndarray:
    """The parts of :data:`OCEAN_BOXES` inside ``region`` (west, south, east, north; west > east crosses 180)."""
    b = np.asarray(OCEAN_BOXES, dtype=float)
    if region is None:
        return b
    west, south, east, north = region
    width = (east - west) % 360.0 or 360.0  # any longitude convention; west > east crosses the antimeridian
    w = (west + 180.0) % 360.0 - 180.0
    spans = [(w, w + width)] if w + width <= 180.0 else [(w, 180.0), (-180.0, w + width - 360.0)]
    parts = [np.column_stack([np.maximum(b[:, 0], w), np.maximum(b[:, 1], south),
                              np.minimum(b[:, 2], e), np.minimum(b[:, 3], north)]) for w, e in spans]
    clipped = np.concatenate(parts)
    return clipped[(clipped[:, 0] < clipped[:, 2]) & (clipped[:, 1] < clipped[:, 3])]


def _positions(
    seed: int, index: np.ndarray, region: tuple[float, float, float, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Open-ocean positions: area-uniform over :data:`OCEAN_BOXES` (or over their parts inside ``region``).

    Each imagette picks a box with probability proportional to its area on the sphere, then a point
    area-uniformly inside it; the boxes do not overlap, so the draw is area-uniform over their union.
    """
    boxes = _ocean_in(region)
    if not boxes.size:  # checked at the public edge; kept here so that no caller ever draws on land
        raise InvalidArgumentError(f"region {region!r} holds none of the open ocean of xwvnet.synthetic.OCEAN_BOXES.")
    s_lo, s_hi = np.sin(np.radians(boxes[:, 1])), np.sin(np.radians(boxes[:, 3]))
    area = (s_hi - s_lo) * (boxes[:, 2] - boxes[:, 0])
    which = np.searchsorted(np.cumsum(area) / area.sum(), _uniform(seed, index, "box"), side="right")
    which = np.minimum(which, boxes.shape[0] - 1)
    box = boxes[which]
    lat = np.degrees(np.arcsin(s_lo[which] + (s_hi[which] - s_lo[which]) * _uniform(seed, index, "lat")))
    lon = box[:, 0] + (box[:, 2] - box[:, 0]) * _uniform(seed, index, "lon")
    return np.clip(lat, box[:, 1], box[:, 3]), np.clip(lon, box[:, 0], np.nextafter(box[:, 2], box[:, 0]))


Place = tuple[tuple[float, float, float, float] | None, tuple[int, int] | None]


def _parameters(
    index: np.ndarray, seed: int, size: tuple[int, int], ragged: bool, place: Place = (None, None)
) -> dict[str, np.ndarray]:
    """Every scalar of each imagette (metadata, ground truth, tags, hidden spectrum shape), vectorised.

    ``place`` = (region, (start, stop) in ns since the epoch), each ``None`` for the default global 2015-2024 draw.
    """
    region, window = place
    index = np.ascontiguousarray(index, dtype=np.int64)
    u = {name: _uniform(seed, index, name) for name in _STREAMS if name not in ("lat", "lon")}
    p: dict[str, np.ndarray] = {"index": index}

    start, stop = (_T_START, _T_STOP) if window is None else (np.datetime64(window[0], "ns"),
                                                             np.datetime64(window[1], "ns"))
    span = (stop - start).astype(np.int64)
    ns = (u["time"] * span).astype(np.int64) // 10**6 * 10**6  # whole milliseconds: exact through a store
    time = start + ns.astype("timedelta64[ns]")
    s1b = (time >= _S1B_LIFE[0]) & (time < _S1B_LIFE[1]) & (u["mission"] < 0.5)
    epoch = np.where(s1b, _ORBIT_EPOCH["s1b"], _ORBIT_EPOCH["s1a"])
    p["time"], p["s1b"] = time, s1b
    p["orbit"] = ((time - epoch).astype(np.int64) / _ORBIT_NS).astype(np.int64) + 1
    p["wv2"] = (index % 2).astype(bool)  # WV alternates wv1/wv2 imagettes along the track
    p["imagette_number"] = index % 180 + 1
    p["incidence_angle"] = np.where(p["wv2"], 36.5, 23.0) + 0.6 * (u["incidence"] - 0.5)
    ascending = u["pass"] < 0.5
    p["heading"] = np.where(ascending, 347.5, 192.5) + 2.0 * (u["heading"] - 0.5)
    p["latitude"], p["longitude"] = _positions(seed, index, region)

    # wind: Weibull(k=2, scale 8 m/s), direction meteorological (coming from)
    wind = 8.0 * np.sqrt(-np.log1p(-u["wind_speed"]))
    p["wind_speed"] = np.clip(wind, 0.5, 25.0)
    p["wind_direction"] = 360.0 * u["wind_direction"]
    # sea state: wind sea (Pierson-Moskowitz limit 0.0214 U^2 x development) + a lognormal swell
    windsea = 0.0214 * p["wind_speed"] ** 2 * (0.2 + 0.8 * u["development"])
    swell = 1.3 * np.exp(0.6 * _normal(seed, index, "swell"))
    p["hs"] = np.clip(np.hypot(windsea, swell), 0.2, 12.0)
    p["peak_wavelength"] = np.clip(170.0 * np.exp(0.35 * _normal(seed, index, "peak_wavelength")), 60.0, 450.0)
    p["wave_direction"] = 360.0 * u["wave_direction"]  # nautical: where the waves come from
    p["spreading"] = 4.0 + 16.0 * u["spreading"]
    p["gamma"] = 1.0 + 4.0 * u["gamma"]

    # near-surface air temperature over the ocean: latitude profile + hemispheric season + noise
    lat = p["latitude"]
    doy = (time - time.astype("datetime64[Y]")).astype("timedelta64[D]").astype(np.float64)
    season = np.sign(lat) * (np.abs(lat) / 70.0) * 6.0 * np.cos(2 * np.pi * (doy - 205.0) / 365.25)
    p["t2m"] = 300.5 - 0.006 * lat**2 + season + 1.5 * _normal(seed, index, "t2m_a")

    # tags, conditioned on the physics that makes them likely
    polar = np.clip((np.abs(lat) - 58.0) / 12.0, 0.0, 0.6) * (p["t2m"] < 276.0)
    ice = u["SI"] < polar
    wind = p["wind_speed"]
    p["SI"] = ice
    p["LW"] = ~ice & (wind < 2.5)
    p["WS"] = ~ice & (wind >= 4.0) & (u["WS"] < 0.3)
    p["MC"] = ~ice & (wind >= 3.0) & (u["MC"] < 0.15)
    p["RC"] = ~ice & (u["RC"] < np.where(np.abs(lat) < 25.0, 0.12, 0.05))
    p["BS"] = ~ice & (wind < 6.0) & (u["BS"] < 0.15)

    lines, samples = size
    if ragged:  # imagettes of slightly different sizes, zero-padded, like a folder of real quicklooks
        p["valid_lines"] = lines - (0.1 * lines * u["valid_lines"]).astype(np.int64)
        p["valid_samples"] = samples - (0.1 * samples * u["valid_samples"]).astype(np.int64)
    else:
        p["valid_lines"] = np.full(index.shape, lines, dtype=np.int64)
        p["valid_samples"] = np.full(index.shape, samples, dtype=np.int64)
    return p


# --------------------------------------------------------------------------- rendering one imagette

@functools.lru_cache(maxsize=8)
def _grid(shape: tuple[int, int], pixel: float) -> dict[str, np.ndarray]:
    """Wavenumber and position grids of one image shape (float32, cached, read-only)."""
    lines, samples = shape
    ky = (2 * np.pi * np.fft.fftfreq(lines, pixel))[:, None]  # azimuth wavenumber (line axis)
    kx = (2 * np.pi * np.fft.rfftfreq(samples, pixel))[None, :]  # range wavenumber (sample axis)
    k = np.hypot(kx, ky)
    k_safe = np.where(k > 0, k, np.inf)
    g = {
        "kx": kx + 0 * ky, "ky": ky + 0 * kx, "k": k,
        "inv_k": 1.0 / k_safe,  # 0 at the mean
        "phi": np.arctan2(kx, ky),  # wavevector angle from the azimuth (flight) axis towards range
        "omega": np.sqrt(_G * k),
        "y": (np.arange(lines) * pixel)[:, None] + np.zeros((1, samples)),
        "x": np.zeros((lines, 1)) + (np.arange(samples) * pixel)[None, :],
    }
    out = {}
    for name, value in g.items():
        value = value.astype(np.float32)
        value.setflags(write=False)
        out[name] = value
    return out


def _filtered_noise(rng: np.random.Generator, filt: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Zero-mean Gaussian noise with spectral amplitude ``filt`` (half-plane), normalised to unit variance."""
    white = rng.standard_normal((2, *filt.shape), dtype=np.float32)
    spectrum = (white[0] + 1j * white[1]) * filt
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=shape)
    std = field.std()
    return field / std if std > 0 else field


def _ring(k: np.ndarray, wavelength: float, rel_width: float) -> np.ndarray:
    """A Gaussian band-pass around wavenumber 2 pi / wavelength."""
    k0 = np.float32(2 * np.pi / wavelength)
    return np.exp(-((k - k0) ** 2) / np.float32(2 * (rel_width * k0) ** 2))


def _lowpass(k: np.ndarray, scale: float) -> np.ndarray:
    return np.exp(-((k * np.float32(scale)) ** 2))


def _mean_nrcs(wind: float, wind_dir: float, heading: float, incidence: float) -> float:
    """Crude CMOD-like VV NRCS (linear): a power law in wind speed with up/cross-wind harmonics."""
    t = (incidence - 23.0) / 13.5
    a_db, power = -7.5 - 7.0 * t, 1.7 + 0.3 * t
    phi = np.radians(wind_dir - (heading + 90.0))  # relative to the (right-looking) look direction
    return float(10 ** (a_db / 10) * (wind / 7.0) ** power * (1 + 0.25 * np.cos(phi) + 0.35 * np.cos(2 * phi)) / 1.35)


def _sea_surface(
    p: Mapping[str, np.generic], rng: np.random.Generator, g: Mapping[str, np.ndarray], shape: tuple[int, int]
) -> tuple[np.ndarray, float]:
    """Wave-induced relative NRCS modulation, and the azimuth displacement spread (m) of the orbital motion."""
    k, phi, omega, kx, ky = g["k"], g["phi"], g["omega"], g["kx"], g["ky"]
    heading, theta = float(p["heading"]), np.radians(float(p["incidence_angle"]))
    # JONSWAP(k) x cos^2s((phi - dir)/2), split in the component travelling towards +k and the one towards -k
    kp = np.float32(2 * np.pi / float(p["peak_wavelength"]))
    ratio = k * np.float32(1.0 / kp)
    width = np.where(ratio <= 1, np.float32(0.07), np.float32(0.09))
    peak = np.exp(-((np.sqrt(ratio) - 1) ** 2) / (2 * width**2))
    inv = g["inv_k"] * np.float32(kp)
    amplitude = np.sqrt(inv**4 * np.exp(np.float32(-1.25) * inv**2) * np.float32(p["gamma"]) ** peak)
    half = (phi - np.float32(np.radians(float(p["wave_direction"]) + 180.0 - heading))) / 2
    s = np.float32(p["spreading"])
    white = rng.standard_normal((4, *k.shape), dtype=np.float32)
    c_fwd = amplitude * np.abs(np.cos(half)) ** s * (white[0] + 1j * white[1])
    c_bwd = amplitude * np.abs(np.sin(half)) ** s * (white[2] + 1j * white[3])
    eta = np.fft.irfft2(c_fwd + c_bwd, s=shape)
    scale = np.float32(float(p["hs"]) / 4.0 / max(float(eta.std()), 1e-30))
    # quasi-linear SAR transfer: tilt (range slope) + velocity bunching; the component towards -k has -omega
    beta = np.float32(693e3 / np.cos(theta) / 7.4e3)  # slant range / platform velocity (s)
    tilt = np.float32(-4.0 / np.tan(theta) / (1 + np.sin(theta) ** 2)) * 1j * kx
    radial = omega * (np.float32(np.sin(theta)) * kx * g["inv_k"] - np.float32(np.cos(theta)) * 1j)
    bunch = np.float32(-1.0) * beta * 1j * ky * radial
    mod = np.fft.irfft2(scale * ((tilt + bunch) * c_fwd + (tilt - bunch) * c_bwd), s=shape)
    v_r = np.fft.irfft2(scale * radial * (c_fwd - c_bwd), s=shape)
    return mod, float(beta * v_r.std())


def _sigma0(p: Mapping[str, np.generic], rng: np.random.Generator, shape: tuple[int, int], pixel: float) -> np.ndarray:
    """Calibrated NRCS (linear, float32) of one imagette from its scalar parameters ``p``."""
    g = _grid(shape, pixel)
    k, phi = g["k"], g["phi"]
    heading = float(p["heading"])
    mod, smear = _sea_surface(p, rng, g, shape)
    ocean = np.maximum(1.0 + mod, np.float32(0.05))

    # phenomena, multiplicative on the ocean NRCS
    if p["WS"]:  # rolls aligned with the wind: wavevectors across the wind at 1-3 km
        across = np.abs(np.sin(phi - np.float32(np.radians(float(p["wind_direction"]) - heading)))) ** 16
        streaks = _filtered_noise(rng, _ring(k, rng.uniform(1000.0, 3000.0), 0.35) * across, shape)
        ocean *= 1.0 + np.float32(rng.uniform(0.06, 0.12)) * streaks
    if p["MC"]:  # isotropic convective cells at 1.5-4 km
        cells = _filtered_noise(rng, _ring(k, rng.uniform(1500.0, 4000.0), 0.3), shape)
        ocean *= np.exp(np.float32(rng.uniform(0.06, 0.12)) * cells)
    if p["LW"]:  # patchy low-wind areas: large, deep NRCS variations
        ocean *= np.exp(np.float32(rng.uniform(0.4, 0.8)) * _filtered_noise(rng, _lowpass(k, 2000.0), shape))
    if p["BS"]:  # meandering dark filaments where a smooth field crosses zero
        field = _filtered_noise(rng, _lowpass(k, 1500.0), shape)
        band = np.exp(-((field / np.float32(rng.uniform(0.08, 0.2))) ** 2))
        ocean *= 1.0 - np.float32(rng.uniform(0.5, 0.8)) * band
    if p["RC"]:  # rain cells: a bright splash core with a darker gust-front ring, 1-3 km radius
        y, x = g["y"], g["x"]
        for _ in range(int(rng.integers(1, 4))):
            cy, cx = rng.uniform(0, shape[0] * pixel), rng.uniform(0, shape[1] * pixel)
            r2 = ((y - np.float32(cy)) ** 2 + (x - np.float32(cx)) ** 2) * np.float32(rng.uniform(1e3, 3e3) ** -2)
            cell = 1.0 + np.float32(rng.uniform(1.5, 4.0)) * np.exp(-r2 / 2) - np.float32(0.5) * np.exp(-r2 / 8)
            ocean *= np.maximum(cell, np.float32(0.1))
    mean = _mean_nrcs(float(p["wind_speed"]), float(p["wind_direction"]), heading, float(p["incidence_angle"]))
    intensity = np.float32(mean) * ocean
    if p["SI"]:  # sea ice: no waves, floes of their own brightness, bright ridges between them
        cover = _filtered_noise(rng, _lowpass(k, 1500.0), shape)
        mask = 1.0 / (1.0 + np.exp(-(cover - np.float32(rng.uniform(-1.5, 0.5))) / np.float32(0.1)))
        floes = _filtered_noise(rng, _lowpass(k, 300.0), shape)
        cracks = _filtered_noise(rng, _ring(k, 800.0, 0.5), shape)
        ice = np.float32(10 ** (rng.uniform(-18.0, -10.0) / 10)) * np.exp(np.float32(0.6) * floes)
        ice *= 1.0 + np.float32(4.0) * np.exp(-((cracks / np.float32(0.1)) ** 2))
        intensity = (1.0 - mask) * intensity + mask * ice

    # noise floor and speckle, then azimuth smearing: the orbital-velocity spread blurs scene and speckle alike
    # along azimuth (Gaussian of width = displacement spread), so the cut-off grows with sea state
    intensity = (intensity + np.float32(10 ** (-24.0 / 10))) * rng.standard_gamma(_LOOKS, size=shape, dtype=np.float32)
    blur = np.exp(np.float32(-0.5 * smear**2) * g["ky"] ** 2)
    intensity = np.fft.irfft2(np.fft.rfft2(intensity) * blur, s=shape)
    return np.maximum(intensity, np.float32(0.0)) * np.float32(1.0 / _LOOKS)


def _stretch(sigma0: np.ndarray) -> np.ndarray:
    """8-bit quicklook: amplitude stretched so that ~1% of pixels sit at 0 and ~1% at 255."""
    amp = np.sqrt(sigma0)
    n = amp.size
    part = np.partition(amp.ravel(), [n // 100, n - 1 - n // 100])
    lo, hi = part[n // 100], part[n - 1 - n // 100]
    q = (amp - lo) / max(hi - lo, 1e-30) * 255.0
    return np.clip(np.rint(q), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- dask blocks and the Dataset

def _sigma0_block(index: np.ndarray, seed: int, size: tuple[int, int], pixel: float, ragged: bool,
                  place: Place = (None, None)) -> np.ndarray:
    """Calibrated NRCS (float32, NaN outside the valid extent) for a block of imagette indices."""
    p = _parameters(index, seed, size, ragged, place)
    out = np.full((index.size, *size), np.nan, dtype=np.float32)
    for j, i in enumerate(index):
        one = {name: value[j] for name, value in p.items()}
        vl, vs = int(one["valid_lines"]), int(one["valid_samples"])
        out[j, :vl, :vs] = _sigma0(one, _pixel_rng(seed, int(i)), (vl, vs), pixel)
    return out


def _quicklook_block(sigma0: np.ndarray) -> np.ndarray:
    """Stretch each imagette's valid (non-NaN) region to uint8; 0 elsewhere."""
    out = np.zeros(sigma0.shape, dtype=np.uint8)
    for j, image in enumerate(sigma0):
        vl = int(np.isfinite(image[:, 0]).sum())
        vs = int(np.isfinite(image[0, :]).sum())
        out[j, :vl, :vs] = _stretch(image[:vl, :vs])
    return out


def _ids(seed: int, index: np.ndarray) -> np.ndarray:
    """Ids ``synthetic-<seed>-<index:07d>`` built as fixed-width strings without a Python loop."""
    width = max(7, len(str(int(index.max())))) if index.size else 7
    digits = (index[:, None] // 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)) % 10 + ord("0")
    prefix = np.frombuffer(f"synthetic-{seed}-".encode(), dtype=np.uint8)
    raw = np.concatenate([np.broadcast_to(prefix, (index.size, prefix.size)), digits.astype(np.uint8)], axis=1)
    return np.ascontiguousarray(raw).view(f"S{raw.shape[1]}").ravel().astype("U")


def _place(region: tuple[float, float, float, float] | None, time: tuple | None) -> Place:
    """Checked, hashable (region, time window) for :func:`_parameters`."""
    box = None
    if region is not None:
        if len(tuple(region)) != 4:
            raise InvalidArgumentError(f"region must be (west, south, east, north) in degrees, got {region!r}.")
        west, south, east, north = (float(v) for v in region)
        if not -90.0 <= south < north <= 90.0 or not all(np.isfinite([west, east])):
            raise InvalidArgumentError(
                f"region must have -90 <= south < north <= 90 and finite longitudes, got {region!r}."
            )
        box = (west, south, east, north)
        if not _ocean_in(box).size:
            raise InvalidArgumentError(
                f"region {region!r} holds none of the open ocean where synthetic imagettes are placed "
                "(xwvnet.synthetic.OCEAN_BOXES, boxes with no land): give a region over the open sea, e.g. one "
                "of OCEAN_BOXES as (west, south, east, north).")
    window = None
    if time is not None:
        if len(tuple(time)) != 2:
            raise InvalidArgumentError(f"time must be (start, stop), got {time!r}.")
        start, stop = (np.datetime64(t, "ns") for t in time)
        if not stop > start:
            raise InvalidArgumentError(f"time must be (start, stop) with stop after start, got {time!r}.")
        window = (int(start.astype(np.int64)), int(stop.astype(np.int64)))
    return box, window


def _check(n: int, seed: int, size: tuple[int, int], chunks: int, pixel_size: float) -> tuple[int, int]:
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise InvalidArgumentError(f"n must be a non-negative integer number of imagettes, got {n!r}.")
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
        raise InvalidArgumentError(f"seed must be an integer in [0, 2**64), got {seed!r}.")
    if len(tuple(size)) != 2 or min(size) < 16:
        raise InvalidArgumentError(f"size must be (lines, samples) with both >= 16 pixels, got {size!r}.")
    if not isinstance(chunks, (int, np.integer)) or chunks < 1:
        raise InvalidArgumentError(f"chunks must be a positive number of imagettes per dask chunk, got {chunks!r}.")
    if not pixel_size > 0:
        raise InvalidArgumentError(f"pixel_size must be a positive length in metres, got {pixel_size!r}.")
    return int(size[0]), int(size[1])


def imagettes(
    n: int,
    seed: int = 0,
    size: tuple[int, int] = (256, 256),
    chunks: int = 64,
    *,
    sigma0: bool = False,
    ragged: bool = False,
    pixel_size: float = PIXEL_SIZE,
    region: tuple[float, float, float, float] | None = None,
    time: tuple[str | np.datetime64, str | np.datetime64] | None = None,
) -> xr.Dataset:
    """Generate ``n`` WV-like imagettes with their sea-state truth, lazily.

    Real WV data come without ground truth and in small public samples; these imagettes carry the wave height,
    wavelength, directions, wind and air temperature that made them, so probes and retrieval can be scored
    against a truth, and any number of them can be made for scaling work without a download. Metadata and truth
    are computed at once (vectorised); pixels are rendered by one dask task per chunk, only when read.

    Parameters
    ----------
    n : int
        Number of imagettes, >= 0.
    seed : int, default 0
        Seed in [0, 2**64). Imagette ``i`` depends only on (``seed``, ``i``, ``size``, ``pixel_size``, ``ragged``):
        never on ``n`` or ``chunks``, so a subset or a rechunked store holds the same pixels.
    size : tuple of int, default (256, 256)
        ``(lines, samples)`` of each imagette, both >= 16.
    chunks : int, default 64
        Imagettes per dask chunk (one rendering task each).
    sigma0 : bool, default False
        Also return the calibrated NRCS (linear, float32) that the quicklook was stretched from.
    ragged : bool, default False
        Shrink each imagette's valid extent by up to 10% (padding with 0 in ``quicklook``, NaN in ``sigma0``),
        like a folder of real quicklooks of different sizes.
    pixel_size : float, default PIXEL_SIZE
        Pixel spacing in metres (40 m: 256 pixels span about 10 km).
    region : tuple of float, optional
        ``(west, south, east, north)`` in degrees: place the imagettes area-uniformly on the open ocean inside
        this box (the parts of :data:`OCEAN_BOXES` in it; ``west > east`` crosses the antimeridian), e.g. inside
        the coverage of a reanalysis file to join with. Default: all of :data:`OCEAN_BOXES` (62S to 71N).
    time : tuple, optional
        ``(start, stop)`` (strings or datetime64, UTC): draw times uniformly in this window. Default 2015-2024.

    Returns
    -------
    xarray.Dataset
        A valid imagette Dataset (see :func:`xwvnet.validate`): dask-backed ``quicklook`` (uint8) and, if asked,
        ``sigma0``; ``valid_lines``, ``valid_samples``; tags ``labels(imagette, label)`` over :data:`TAGS`; the
        ground truth ``hs`` (m), ``peak_wavelength`` (m), ``wave_direction`` and ``wind_direction`` (degrees,
        coming from), ``wind_speed`` (m/s), ``t2m`` (K); and the coordinates of the data model (ids
        ``synthetic-<seed>-<index:07d>``, ``time``, open-ocean ``latitude``/``longitude``, ``mission``,
        ``swath``, ``polarization``, ``orbit``, ``imagette_number``, ``incidence_angle``, ``heading``).

    Raises
    ------
    ValueError
        If ``n`` is negative or not an integer, ``seed`` is outside [0, 2**64), ``size`` is not two sizes of at
        least 16, ``chunks`` is below 1, ``pixel_size`` is not positive, ``region``/``time`` are malformed, or
        ``region`` holds none of :data:`OCEAN_BOXES` (it is all land, or coast).

    Examples
    --------
    >>> from xwvnet import synthetic
    >>> ds = synthetic.imagettes(4, seed=1, size=(64, 64), chunks=2)
    >>> dict(ds.sizes)
    {'imagette': 4, 'line': 64, 'sample': 64, 'label': 6}
    >>> str(ds.imagette.values[0]), ds.quicklook.data.npartitions
    ('synthetic-1-0000000', 2)
    >>> ds.hs.values.round(2)
    array([1.48, 0.37, 1.46, 2.94])
    >>> bool((ds.quicklook[:2].values == synthetic.imagettes(2, seed=1, size=(64, 64)).quicklook.values).all())
    True
    """
    lines, samples = _check(n, seed, size, chunks, pixel_size)
    seed, n = int(seed), int(n)
    index = np.arange(n, dtype=np.int64)
    place = _place(region, time)
    p = _parameters(index, seed, (lines, samples), ragged, place)

    lazy_index = da.arange(n, chunks=int(chunks), dtype=np.int64)
    image_chunks = (lazy_index.chunks[0], (lines,), (samples,))
    # keys name everything the pixels depend on, so two different synthetic sets never share a dask key
    token = tokenize(seed, n, int(chunks), (lines, samples), float(pixel_size), bool(ragged), place)
    nrcs = lazy_index.map_blocks(
        _sigma0_block, seed, (lines, samples), float(pixel_size), bool(ragged), place,
        new_axis=[1, 2], chunks=image_chunks, dtype=np.float32, name=f"synthetic-sigma0-{seed}-{token}",
    )
    quicklook = nrcs.map_blocks(_quicklook_block, dtype=np.uint8, name=f"synthetic-quicklook-{seed}-{token}")

    ids = _ids(seed, index)
    image_dims = (S.IMAGETTE, S.LINE, S.SAMPLE)
    data_vars = {
        S.QUICKLOOK: (image_dims, quicklook, {"long_name": "8-bit stretched amplitude quicklook"}),
        S.VALID_LINES: (S.IMAGETTE, p["valid_lines"].astype(np.int32)),
        S.VALID_SAMPLES: (S.IMAGETTE, p["valid_samples"].astype(np.int32)),
        S.LABELS: ((S.IMAGETTE, S.LABEL), np.stack([p[t] for t in TAGS], -1).astype(np.int8)),
        "hs": (S.IMAGETTE, p["hs"], {"units": "m", "long_name": "significant wave height"}),
        "peak_wavelength": (S.IMAGETTE, p["peak_wavelength"], {"units": "m"}),
        "wave_direction": (S.IMAGETTE, p["wave_direction"], {"units": "degree", "convention": "coming from"}),
        "wind_speed": (S.IMAGETTE, p["wind_speed"], {"units": "m s-1", "long_name": "10 m wind speed"}),
        "wind_direction": (S.IMAGETTE, p["wind_direction"], {"units": "degree", "convention": "coming from"}),
        "t2m": (S.IMAGETTE, p["t2m"], {"units": "K", "long_name": "2 m air temperature"}),
    }
    if sigma0:
        data_vars[S.SIGMA0] = (image_dims, nrcs, {"units": "1", "long_name": "normalised radar cross-section"})
    missions = np.array(["s1a", "s1b"], dtype=object)
    coords = {
        S.IMAGETTE: ids,
        S.LABEL: np.array(TAGS, dtype=object),
        S.TIME: (S.IMAGETTE, p["time"]),
        S.LATITUDE: (S.IMAGETTE, p["latitude"]),
        S.LONGITUDE: (S.IMAGETTE, p["longitude"]),
        S.MISSION: (S.IMAGETTE, missions[p["s1b"].astype(np.int64)]),
        S.SWATH: (S.IMAGETTE, np.array(["wv1", "wv2"], dtype=object)[p["wv2"].astype(np.int64)]),
        S.POLARIZATION: (S.IMAGETTE, np.full(n, "vv", dtype=object)),
        S.ORBIT: (S.IMAGETTE, p["orbit"]),
        S.NUMBER: (S.IMAGETTE, p["imagette_number"]),
        S.INCIDENCE_ANGLE: (S.IMAGETTE, p["incidence_angle"], {"units": "degree"}),
        S.HEADING: (S.IMAGETTE, p["heading"], {"units": "degree", "convention": "clockwise from north"}),
    }
    attrs = {
        "title": "xwvnet synthetic Sentinel-1 wave-mode imagettes",
        "source": "xwvnet.synthetic.imagettes",
        "seed": seed,
        "pixel_size_m": float(pixel_size),
        "ragged": int(ragged),
    }
    return S.with_cf_attrs(xr.Dataset(data_vars, coords=coords, attrs=attrs))
