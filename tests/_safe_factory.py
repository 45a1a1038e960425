"""Make small, schema-valid Sentinel-1 WV Level-1 SLC SAFE products with known truth (the TorchGeo way).

No real WV L1 pixels are public here, so the reader is tested on products built to the public specification:

* ``manifest.safe`` laid out like the real WV manifest in ``shared/data/s1_wv/`` (``xfdu:XFDU`` root, the
  ``informationPackageMap`` content units, ``metadataSection`` with platform, orbit reference, pass and one
  ``safe:frame`` footprint per imagette, ``dataObjectSection`` with one ``dataObject``/``fileLocation`` per file);
* per imagette ``annotation/<stem>.xml``, ``annotation/calibration/calibration-<stem>.xml`` and
  ``noise-<stem>.xml`` with the element names and nesting of the real IW SLC files in ``shared/data/s1_other_modes/``
  (``product/adsHeader``, ``generalAnnotation/productInformation``, ``imageAnnotation/imageInformation``,
  ``geolocationGrid/geolocationGridPointList``; ``calibrationVectorList/calibrationVector`` with
  ``sigmaNought``/``betaNought``/``gamma``/``dn``; ``noiseRangeVectorList/noiseRangeVector/noiseRangeLut``, or the
  pre-IPF-2.9 ``noiseVectorList/noiseVector/noiseLut``, and no azimuth noise vectors, as in WV);
* ``measurement/<stem>.tiff``: baseline little-endian TIFF, one strip, SampleFormat 5 (complex integer) with 32 bits
  per sample (16-bit I then Q), as ESA writes SLC measurement files (uncompressed here).

Truth: the calibration LUT is bilinear in (line, pixel) and so is the geolocation grid, so bilinear interpolation
reproduces them exactly and ``sigma0 = |DN|^2 / sigmaNought(line, pixel)^2`` is known analytically.
"""

from __future__ import annotations

import shutil
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NAME = "S1A_WV_SLC__1SSV_20190213T130655_20190213T131155_025911_02E29D_ABCD"
# pixel spacings (slant range x azimuth, metres), mid-swath incidence and image sizes (lines x samples) per beam,
# from real WV1/WV2 annotation headers
SPACING = {"wv1": (1.4976, 4.1248), "wv2": (2.7456, 4.1078)}
INCIDENCE = {"wv1": 24.1, "wv2": 37.1}
FULL_SIZE = {"wv1": (4923, 5681), "wv2": (4774, 4500)}
# COSPAR ids of the units, as manifests name them (S1D's is a placeholder of the same form: no reader uses it)
_NSSDC = {"s1a": "2014-016A", "s1b": "2016-025A", "s1c": "2024-235A", "s1d": "2025-000A"}


@dataclass
class Imagette:
    """What one generated imagette holds, for the tests to compare with."""

    number: int
    swath: str
    stem: str
    lines: int
    samples: int
    start: np.datetime64
    dn: np.ndarray  # complex64, the integer DN written
    lut: tuple[float, float, float]  # sigmaNought = a + b * line + c * pixel
    noise: tuple[float, float]  # noise = n0 + n1 * pixel (DN^2 units)
    grid: dict[str, np.ndarray] = field(default_factory=dict)  # lat/lon/inc = p0 + p1 * line + p2 * pixel
    heading: float = -167.0
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)  # latitude, longitude, incidence at the image centre

    def lut_at(self, line: np.ndarray, pixel: np.ndarray) -> np.ndarray:
        a, b, c = self.lut
        return a + b * np.asarray(line, dtype=np.float64) + c * np.asarray(pixel, dtype=np.float64)

    def sigma0(self, denoise: bool = False) -> np.ndarray:
        """The analytic sigma0 (float64)."""
        lines, pixels = np.meshgrid(np.arange(self.lines), np.arange(self.samples), indexing="ij")
        power = self.dn.real.astype(np.float64) ** 2 + self.dn.imag.astype(np.float64) ** 2
        if denoise:
            power = power - (self.noise[0] + self.noise[1] * pixels)
        return power / self.lut_at(lines, pixels) ** 2


def write_cint16_tiff(path: Path, dn: np.ndarray) -> None:
    """A baseline TIFF of complex int16 samples (SampleFormat 5, 32 bits), one uncompressed strip."""
    lines, samples = dn.shape
    data = np.empty((lines, samples, 2), dtype="<i2")
    data[..., 0] = np.real(dn)
    data[..., 1] = np.imag(dn)
    payload = data.tobytes()
    # (tag, type, value); type 3 SHORT, 4 LONG; None = offset of the pixel data
    tags = [(256, 4, samples), (257, 4, lines), (258, 3, 32), (259, 3, 1), (262, 3, 1), (273, 4, None),
            (277, 3, 1), (278, 4, lines), (279, 4, len(payload)), (284, 3, 1), (339, 3, 5)]
    start = 8 + 2 + 12 * len(tags) + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(tags)))
    for code, typ, value in tags:
        value = start if value is None else value
        out += struct.pack("<HHIHH", code, typ, 1, value, 0) if typ == 3 else struct.pack("<HHII", code, typ, 1, value)
    out += struct.pack("<I", 0) + payload
    path.write_bytes(bytes(out))


def _stamp(t: np.datetime64) -> str:
    return str(np.datetime64(t, "s")).replace("-", "").replace(":", "").replace("T", "t")


def _t(t: np.datetime64) -> str:
    return str(np.datetime64(t, "us"))


def _nums(values: np.ndarray, fmt: str = "{:.6e}") -> str:
    return " ".join(fmt.format(v) for v in values)


def _header(im: Imagette, mission: str, orbit: int, datatake: int, stop: np.datetime64) -> str:
    return (f"<adsHeader><missionId>{mission.upper()}</missionId><productType>SLC</productType>"
            f"<polarisation>VV</polarisation><mode>WV</mode><swath>{im.swath.upper()}</swath>"
            f"<startTime>{_t(im.start)}</startTime><stopTime>{_t(stop)}</stopTime>"
            f"<absoluteOrbitNumber>{orbit}</absoluteOrbitNumber><missionDataTakeId>{datatake}</missionDataTakeId>"
            f"<imageNumber>{im.number:03d}</imageNumber></adsHeader>")


def _dynamics(im: Imagette, dt: float) -> tuple[str, str]:
    """Orbit, attitude, terrain height, noise, downlink (under generalAnnotation) and Doppler centroid and antenna
    pattern (under product) of one imagette, as real annotations have them (two or three records each, plausible
    values: the reader does not use them; ESA's SAFE-to-EOPF converter requires them)."""
    t = [im.start + np.timedelta64(int(k * 1e9), "ns") for k in (-1, 0, 1, 2, 3)]
    orbits = "".join(
        f"<orbit><time>{_t(x)}</time><frame>Earth Fixed</frame><position><x>{4.3e6 + 6.0e4 * k:.9e}</x>"
        f"<y>{1.45e6 - 1.0e3 * k:.9e}</y><z>{5.42e6 - 4.8e4 * k:.9e}</z></position><velocity>"
        f"<x>{5962.6 - 49 * k:.9e}</x><y>{-91.1 - 25 * k:.9e}</y><z>{-4695.2 - 61 * k:.9e}</z></velocity></orbit>"
        for k, x in enumerate(t))
    attitudes = "".join(
        f"<attitude><time>{_t(x)}</time><frame>GM2000</frame><q0>3.378388e-01</q0><q1>3.421760e-01</q1>"
        f"<q2>1.215485e-01</q2><q3>8.683355e-01</q3><wx>-6.1e-05</wx><wy>-9.4e-04</wy><wz>-4.8e-04</wz>"
        f"<roll>{-30.2 - 0.04 * k:.9e}</roll><pitch>{-51.5 - 0.04 * k:.9e}</pitch><yaw>{30.8 + 0.05 * k:.9e}</yaw>"
        "</attitude>" for k, x in enumerate(t))
    general = (
        f'<downlinkInformationList count="1"><downlinkInformation><swath>{im.swath.upper()}</swath>'
        f"<azimuthTime>{_t(t[1])}</azimuthTime><prf>1.717128973878037e+03</prf></downlinkInformation>"
        f'</downlinkInformationList><orbitList count="{len(t)}">{orbits}</orbitList>'
        f'<attitudeList count="{len(t)}">{attitudes}</attitudeList>'
        f'<noiseList count="1"><noise><swath>{im.swath.upper()}</swath><azimuthTime>{_t(t[0])}</azimuthTime>'
        "<noisePowerCorrectionFactor>6.195673e+00</noisePowerCorrectionFactor><numberOfNoiseLines>8"
        "</numberOfNoiseLines></noise></noiseList>"
        f'<terrainHeightList count="1"><terrainHeight><azimuthTime>{_t(t[1])}</azimuthTime><value>0.0</value>'
        "</terrainHeight></terrainHeightList>")
    srt = 5.0e-3 + np.array([0.0, 0.5, 1.0]) * im.samples * 1.2e-8
    product = (
        f'<dopplerCentroid><dcEstimateList count="1"><dcEstimate><azimuthTime>{_t(t[1])}</azimuthTime>'
        '<t0>5.0e-03</t0><geometryDcPolynomial count="3">-1.949903e+00 -2.938135e+02 1.053522e+05'
        '</geometryDcPolynomial><dataDcPolynomial count="3">-1.793574e+00 3.565045e+03 -3.326166e+06'
        "</dataDcPolynomial><dataDcRmsError>7.387162208557129e+00</dataDcRmsError><dataDcRmsErrorAboveThreshold>"
        f"false</dataDcRmsErrorAboveThreshold><fineDceAzimuthStartTime>{_t(t[1])}</fineDceAzimuthStartTime>"
        f"<fineDceAzimuthStopTime>{_t(t[2])}</fineDceAzimuthStopTime></dcEstimate></dcEstimateList>"
        f'</dopplerCentroid><antennaPattern><antennaPatternList count="1"><antennaPattern><swath>'
        f"{im.swath.upper()}</swath><azimuthTime>{_t(t[1])}</azimuthTime>"
        f'<slantRangeTime count="3">{_nums(srt, "{:.15e}")}</slantRangeTime>'
        f'<elevationAngle count="3">{_nums(INCIDENCE[im.swath] - 3.0 + np.arange(3.0))}</elevationAngle>'
        f'<incidenceAngle count="3">{_nums(INCIDENCE[im.swath] - 1.0 + np.arange(3.0))}</incidenceAngle>'
        "<terrainHeight>0.0</terrainHeight><roll>-3.0e+01</roll></antennaPattern></antennaPatternList>"
        "</antennaPattern>")
    return general, product


def _annotation(im: Imagette, head: str, pass_: str, dt: float, grid_shape: tuple[int, int]) -> str:
    rg, az = SPACING[im.swath]
    points = []
    for line in np.linspace(0, im.lines - 1, grid_shape[0]).round().astype(int):
        for pixel in np.linspace(0, im.samples - 1, grid_shape[1]).round().astype(int):
            v = {k: g[0] + g[1] * line + g[2] * pixel for k, g in im.grid.items()}
            t = im.start + np.timedelta64(int(line * dt * 1e9), "ns")
            points.append(
                f"<geolocationGridPoint><azimuthTime>{_t(t)}</azimuthTime>"
                f"<slantRangeTime>{5.0e-3 + pixel * 1.2e-8:.15e}</slantRangeTime><line>{line}</line>"
                f"<pixel>{pixel}</pixel><latitude>{v['latitude']:.15e}</latitude>"
                f"<longitude>{v['longitude']:.15e}</longitude><height>0.0</height>"
                f"<incidenceAngle>{v['incidence']:.15e}</incidenceAngle>"
                f"<elevationAngle>{v['incidence'] - 2.5:.15e}</elevationAngle></geolocationGridPoint>")
    stop = im.start + np.timedelta64(int((im.lines - 1) * dt * 1e9), "ns")
    general, dynamics = _dynamics(im, dt)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<product>' + head
        + "<qualityInformation><productQualityIndex>0.0</productQualityIndex></qualityInformation>"
        + f"<generalAnnotation><productInformation><pass>{pass_}</pass><timelinessCategory>Fast-24h"
        + f"</timelinessCategory><platformHeading>{im.heading:.15e}</platformHeading><projection>Slant Range"
        + f"</projection><rangeSamplingRate>{299792458.0 / (2 * rg):.15e}</rangeSamplingRate>"
        + "<radarFrequency>5.405000454334350e+09</radarFrequency><azimuthSteeringRate>0.0</azimuthSteeringRate>"
        + "</productInformation>" + general + "</generalAnnotation>"
        + "<imageAnnotation><imageInformation>"
        + f"<productFirstLineUtcTime>{_t(im.start)}</productFirstLineUtcTime>"
        + f"<productLastLineUtcTime>{_t(stop)}</productLastLineUtcTime>"
        + "<slantRangeTime>5.0e-03</slantRangeTime><pixelValue>Complex</pixelValue>"
        + "<outputPixels>16 bit Signed Integer</outputPixels>"
        + f"<rangePixelSpacing>{rg:.6e}</rangePixelSpacing><azimuthPixelSpacing>{az:.6e}</azimuthPixelSpacing>"
        + f"<azimuthTimeInterval>{dt:.15e}</azimuthTimeInterval>"
        + f"<numberOfSamples>{im.samples}</numberOfSamples><numberOfLines>{im.lines}</numberOfLines>"
        + f"<incidenceAngleMidSwath>{INCIDENCE[im.swath]:.15e}</incidenceAngleMidSwath>"
        + "</imageInformation><processingInformation><thermalNoiseCorrectionPerformed>false"
        + "</thermalNoiseCorrectionPerformed></processingInformation></imageAnnotation>"
        + f'<geolocationGrid><geolocationGridPointList count="{len(points)}">' + "".join(points)
        + "</geolocationGridPointList></geolocationGrid>" + dynamics + "</product>\n")


def _vector_lines(im: Imagette) -> np.ndarray:
    # like real products: the first vector before the image, the last after it
    return np.linspace(-im.lines // 4, im.lines + im.lines // 4, 5).round().astype(int)


def _pixels(im: Imagette) -> np.ndarray:
    step = max(1, im.samples // 8)
    return np.unique(np.r_[np.arange(0, im.samples, step), im.samples - 1])


def _calibration(im: Imagette, head: str, dt: float) -> str:
    pixels = _pixels(im)
    vectors = []
    for line in _vector_lines(im):
        s0 = im.lut_at(line, pixels)
        t = im.start + np.timedelta64(int(line * dt * 1e9), "ns")
        n = len(pixels)
        vectors.append(
            f"<calibrationVector><azimuthTime>{_t(t)}</azimuthTime><line>{line}</line>"
            f'<pixel count="{n}">{_nums(pixels, "{}")}</pixel>'
            f'<sigmaNought count="{n}">{_nums(s0, "{:.15e}")}</sigmaNought>'
            f'<betaNought count="{n}">{_nums(np.full(n, 237.0))}</betaNought>'
            f'<gamma count="{n}">{_nums(s0 * 0.93)}</gamma><dn count="{n}">{_nums(np.full(n, 237.0))}</dn>'
            "</calibrationVector>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<calibration>' + head
            + "<calibrationInformation><absoluteCalibrationConstant>1.0</absoluteCalibrationConstant>"
            + f'</calibrationInformation><calibrationVectorList count="{len(vectors)}">' + "".join(vectors)
            + "</calibrationVectorList></calibration>\n")


def _noise(im: Imagette, head: str, dt: float, style: str) -> str:
    pixels = _pixels(im)
    if style == "none":
        body = '<noiseRangeVectorList count="0"/>'
    else:
        vec, lut = ("noiseRangeVector", "noiseRangeLut") if style == "range" else ("noiseVector", "noiseLut")
        vectors = []
        # IPF >= 2.9 products have range noise vectors that stop short of the last line (readers extend the last)
        for line in _vector_lines(im)[[0, 2] if style == "range" else [0, -1]]:
            t = im.start + np.timedelta64(int(line * dt * 1e9), "ns")
            values = im.noise[0] + im.noise[1] * pixels
            vectors.append(f"<{vec}><azimuthTime>{_t(t)}</azimuthTime><line>{line}</line>"
                           f'<pixel count="{len(pixels)}">{_nums(pixels, "{}")}</pixel>'
                           f'<{lut} count="{len(pixels)}">{_nums(values, "{:.15e}")}</{lut}></{vec}>')
        body = f'<{vec}List count="{len(vectors)}">' + "".join(vectors) + f"</{vec}List>"
    return '<?xml version="1.0" encoding="UTF-8"?>\n<noise>' + head + body + "</noise>\n"


def _manifest(name: str, images: list[Imagette], files: list[str], pass_: str, mission: str, orbit: int,
              datatake: int, footprints: list[np.ndarray]) -> str:
    start = min(i.start for i in images)
    stop = max(i.start for i in images) + np.timedelta64(3, "s")
    ns = ('xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:gml="http://www.opengis.net/gml" '
          'xmlns:xfdu="urn:ccsds:schema:xfdu:1" xmlns:safe="http://www.esa.int/safe/sentinel-1.0" '
          'xmlns:s1="http://www.esa.int/safe/sentinel-1.0/sentinel-1" '
          'xmlns:s1sarl1="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-1"')
    units, objects = [], []
    for href in files:
        oid = Path(href).stem.replace("-", "")
        rep = ("s1Level1MeasurementSchema" if href.startswith("./measurement") else
               "s1Level1CalibrationSchema" if "/calibration-" in href else
               "s1Level1NoiseSchema" if "/noise-" in href else "s1Level1ProductSchema")
        units.append(f'<xfdu:contentUnit unitType="Metadata Unit" repID="{rep}">'
                     f'<dataObjectPointer dataObjectID="{oid}"/></xfdu:contentUnit>')
        mime = "application/octet-stream" if rep == "s1Level1MeasurementSchema" else "text/xml"
        objects.append(f'<dataObject ID="{oid}" repID="{rep}"><byteStream mimeType="{mime}">'
                       f'<fileLocation locatorType="URL" href="{href}"/></byteStream></dataObject>')
    frames = "".join(
        '<safe:frame><safe:footPrint srsName="http://www.opengis.net/gml/srs/epsg.xml#4326"><gml:coordinates>'
        + " ".join(f"{a:.6f},{b:.6f}" for a, b in fp) + "</gml:coordinates></safe:footPrint></safe:frame>"
        for fp in footprints)
    swaths = "".join(f"<s1sarl1:swath>{s.upper()}</s1sarl1:swath>" for s in sorted({i.swath for i in images}))
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<xfdu:XFDU {ns} '
        'version="esa/safe/sentinel-1.0/sentinel-1/sar/level-1/slc/standard/wvsp"><informationPackageMap>'
        '<xfdu:contentUnit unitType="SAFE Archive Information Package" textInfo="Sentinel-1 WV Level-1 SLC Product">'
        + "".join(units) + "</xfdu:contentUnit></informationPackageMap><metadataSection>"
        '<metadataObject ID="platform" classification="DESCRIPTION" category="DMD"><metadataWrap mimeType="text/xml" '
        'vocabularyName="SAFE" textInfo="Platform Description"><xmlData><safe:platform>'
        f"<safe:nssdcIdentifier>{_NSSDC[mission]}</safe:nssdcIdentifier>"
        f"<safe:familyName>SENTINEL-1</safe:familyName><safe:number>{mission[-1].upper()}</safe:number>"
        '<safe:instrument><safe:familyName abbreviation="SAR">Synthetic Aperture Radar</safe:familyName>'
        f"<safe:extension><s1sarl1:instrumentMode><s1sarl1:mode>WV</s1sarl1:mode>{swaths}</s1sarl1:instrumentMode>"
        "</safe:extension></safe:instrument></safe:platform></xmlData></metadataWrap></metadataObject>"
        '<metadataObject ID="measurementOrbitReference" classification="DESCRIPTION" category="DMD"><metadataWrap '
        'mimeType="text/xml" vocabularyName="SAFE" textInfo="Orbit Reference"><xmlData><safe:orbitReference>'
        f'<safe:orbitNumber type="start">{orbit}</safe:orbitNumber><safe:orbitNumber type="stop">{orbit}'
        f'</safe:orbitNumber><safe:relativeOrbitNumber type="start">{(orbit - 73) % 175 + 1}'
        f'</safe:relativeOrbitNumber><safe:relativeOrbitNumber type="stop">{(orbit - 73) % 175 + 1}'
        "</safe:relativeOrbitNumber><safe:cycleNumber>1</safe:cycleNumber><safe:phaseIdentifier>1"
        "</safe:phaseIdentifier><safe:extension><s1:orbitProperties>"
        f"<s1:pass>{pass_.upper()}</s1:pass><s1:ascendingNodeTime>{_t(start)}</s1:ascendingNodeTime>"
        "</s1:orbitProperties></safe:extension></safe:orbitReference>"
        "</xmlData></metadataWrap></metadataObject>"
        '<metadataObject ID="generalProductInformation" classification="DESCRIPTION" category="DMD"><metadataWrap '
        'mimeType="text/xml" vocabularyName="SAFE" textInfo="General Product Information"><xmlData>'
        "<s1sarl1:standAloneProductInformation><s1sarl1:productClass>S</s1sarl1:productClass>"
        "<s1sarl1:productClassDescription>SAR Standard L1 Product</s1sarl1:productClassDescription>"
        "<s1sarl1:productComposition>Individual</s1sarl1:productComposition>"
        "<s1sarl1:productTimelinessCategory>Fast-24h</s1sarl1:productTimelinessCategory>"
        f"<s1sarl1:missionDataTakeID>{datatake}</s1sarl1:missionDataTakeID>"
        "<s1sarl1:transmitterReceiverPolarisation>VV</s1sarl1:transmitterReceiverPolarisation>"
        "<s1sarl1:productType>SLC</s1sarl1:productType></s1sarl1:standAloneProductInformation></xmlData>"
        "</metadataWrap></metadataObject>"
        '<metadataObject ID="acquisitionPeriod" classification="DESCRIPTION" category="DMD"><metadataWrap '
        'mimeType="text/xml" vocabularyName="SAFE" textInfo="Acquisition Period"><xmlData><safe:acquisitionPeriod>'
        f"<safe:startTime>{_t(start)}</safe:startTime><safe:stopTime>{_t(stop)}</safe:stopTime>"
        "</safe:acquisitionPeriod></xmlData></metadataWrap></metadataObject>"
        '<metadataObject ID="processing" classification="PROVENANCE" category="PDI"><metadataWrap '
        'mimeType="text/xml" vocabularyName="SAFE" textInfo="Processing"><xmlData>'
        f'<safe:processing name="SLC Processing" start="{_t(stop)}" stop="{_t(stop)}">'
        '<safe:facility country="Italy" name="Copernicus S1 Core Ground Segment - DPA" organisation="ESA" '
        'site="Airbus DS-Matera"><safe:software name="Sentinel-1 IPF" version="003.71"/></safe:facility>'
        "</safe:processing></xmlData></metadataWrap></metadataObject>"
        '<metadataObject ID="measurementFrameSet" classification="DESCRIPTION" category="DMD"><metadataWrap '
        'mimeType="text/xml" vocabularyName="SAFE" textInfo="Frame Set"><xmlData><safe:frameSet>' + frames
        + "</safe:frameSet></xmlData></metadataWrap></metadataObject></metadataSection><dataObjectSection>"
        + "".join(objects) + "</dataObjectSection></xfdu:XFDU>\n")


def texture(shape: tuple[int, int], rng: np.random.Generator, log_std: float = 0.25, scale: float = 60.0,
            ) -> np.ndarray:
    """A smooth, lognormal sea-surface-like NRCS modulation (mean 1): swell plus low-passed noise."""
    lines, samples = shape
    ky = np.fft.fftfreq(lines)[:, None]
    kx = np.fft.rfftfreq(samples)[None, :]
    k = np.hypot(ky, kx)
    spectrum = np.exp(-((k * scale - 1.0) ** 2) * 2.0) + 0.3 * np.exp(-k * scale / 3)
    noise = np.fft.irfft2(np.fft.rfft2(rng.standard_normal(shape)) * spectrum, s=shape)
    noise = (noise - noise.mean()) / (noise.std() + 1e-12)
    return np.exp(log_std * noise - log_std**2 / 2)


def make_wv_safe(
    root: Path,
    *,
    name: str = NAME,
    sizes: list[tuple[int, int]] | None = None,
    swaths: list[str] | None = None,
    measurement_names: list[str] | None = None,
    seed: int = 0,
    sigma0_mean: float = 0.05,
    log_std: float = 0.25,
    speckle: bool = True,
    noise_style: str = "range",
    pass_: str = "Descending",
    as_zip: bool = False,
    grid_shape: tuple[int, int] = (5, 6),
) -> tuple[Path, list[Imagette]]:
    """Write one WV SLC SAFE product (folder, or zip holding ``<name>.SAFE/``) and return it with its truth.

    ``sizes`` gives (lines, samples) per imagette (default three small ones); swaths alternate wv1/wv2 unless
    given; ``measurement_names`` (e.g. from a real manifest) fixes the file stems instead of making them.
    """
    rng = np.random.default_rng(seed)
    if measurement_names is not None:
        stems = [Path(m).name.split(".")[0] for m in measurement_names]
        sizes = sizes or [(24, 20)] * len(stems)
        swaths = [s.split("-")[1] for s in stems]
    sizes = sizes or [(120, 100), (96, 110), (130, 90)]
    swaths = swaths or [("wv1", "wv2")[k % 2] for k in range(len(sizes))]
    mission, orbit, datatake_hex = name[:3].lower(), int(name.split("_")[-3]), name.split("_")[-2].lower()
    t0 = np.datetime64(f"{name[17:21]}-{name[21:23]}-{name[23:25]}T{name[26:28]}:{name[28:30]}:{name[30:32]}", "us")
    images: list[Imagette] = []
    for k, ((lines, samples), swath) in enumerate(zip(sizes, swaths)):
        number = k + 1
        start = t0 + np.timedelta64(15 * k, "s") + np.timedelta64(int(rng.integers(0, 999_999)), "us")
        stop = start + np.timedelta64(3, "s")
        if measurement_names is not None:
            stem = stems[k]
            number = int(stem[-3:])
        else:
            stem = f"{mission}-{swath}-slc-vv-{_stamp(start)}-{_stamp(stop)}-{orbit:06d}-{datatake_hex}-{number:03d}"
        lat0, lon0 = 35.0 - 0.9 * k, -34.6 - 2.2 * (k % 2)
        inc0 = INCIDENCE[swath] - 0.7
        grid = {"latitude": np.array([lat0, 1.8e-1 / lines, -1.5e-2 / samples]),
                "longitude": np.array([lon0, -4.0e-2 / lines, -2.2e-1 / samples]),
                "incidence": np.array([inc0, 1e-3 / lines, 1.4 / samples])}
        lut = (300.0 + 10 * k, 2.0 / lines, 25.0 / samples)
        im = Imagette(number, swath, stem, lines, samples, start, np.zeros((lines, samples), np.complex64), lut,
                      (40.0 + k, 5.0 / samples), grid, heading=-167.0 + k * 0.01)
        lg, pg = np.meshgrid(np.arange(lines), np.arange(samples), indexing="ij")
        s0 = sigma0_mean * texture((lines, samples), rng, log_std) * im.lut_at(lg, pg) ** 2
        s0 = s0 * (INCIDENCE[swath] / (inc0 + 1.4 * pg / samples)) ** 2  # a falling NRCS with incidence
        if speckle:
            z = (rng.standard_normal((lines, samples)) + 1j * rng.standard_normal((lines, samples))) / np.sqrt(2)
        else:
            z = np.exp(1j * rng.uniform(0, 2 * np.pi, (lines, samples)))
        amp = np.sqrt(s0 + im.noise[0] + im.noise[1] * pg) * z
        im.dn = (np.clip(np.rint(amp.real), -32768, 32767) + 1j * np.clip(np.rint(amp.imag), -32768, 32767)
                 ).astype(np.complex64)
        cl, cp = (lines - 1) / 2, (samples - 1) / 2
        im.centre = tuple(float(g[0] + g[1] * cl + g[2] * cp) for g in grid.values())
        images.append(im)
    safe = Path(root) / f"{name}.SAFE"
    if safe.exists():
        shutil.rmtree(safe)
    (safe / "annotation" / "calibration").mkdir(parents=True)
    (safe / "measurement").mkdir()
    files: list[str] = []
    footprints = []
    for im in images:
        dt = 4.1 / 6900.0
        head = _header(im, mission, orbit, int(datatake_hex, 16), im.start + np.timedelta64(3, "s"))
        (safe / "annotation" / f"{im.stem}.xml").write_text(_annotation(im, head, pass_, dt, grid_shape))
        (safe / "annotation" / "calibration" / f"calibration-{im.stem}.xml").write_text(_calibration(im, head, dt))
        (safe / "annotation" / "calibration" / f"noise-{im.stem}.xml").write_text(_noise(im, head, dt, noise_style))
        write_cint16_tiff(safe / "measurement" / f"{im.stem}.tiff", im.dn)
        files += [f"./annotation/{im.stem}.xml", f"./annotation/calibration/calibration-{im.stem}.xml",
                  f"./annotation/calibration/noise-{im.stem}.xml", f"./measurement/{im.stem}.tiff"]
        corners = [(0, 0), (0, im.samples - 1), (im.lines - 1, im.samples - 1), (im.lines - 1, 0)]
        footprints.append(np.array([[im.grid["latitude"] @ (1, li, p), im.grid["longitude"] @ (1, li, p)]
                                    for li, p in corners]))
    (safe / "manifest.safe").write_text(
        _manifest(name, images, files, pass_, mission, orbit, int(datatake_hex, 16), footprints))
    if not as_zip:
        return safe, images
    archive = Path(root) / f"{name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(safe.rglob("*")):
            zf.write(path, path.relative_to(root).as_posix())
    shutil.rmtree(safe)
    return archive, images
