from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import struct
import tracemalloc
import xml.etree.ElementTree as ElementTree
import zipfile
import zlib
from typing import Any

import pytest
from PIL import Image, TiffImagePlugin

from airflow_provider_pixxel.simulator.files import (
    DEFAULT_REPORT_COLUMNS,
    PADDING_BLOCK_SIZE,
    Artifact,
    PaddingPart,
    make_geotiff,
    make_package,
    padding_crc32,
    render_index_png,
    render_order_report,
    render_sld,
    single_file,
)

BBOX = (77.5, 12.9, 77.6, 13.05)
LEGEND: list[dict[str, Any]] = [
    {"min": -1.0, "max": 0.0, "color": "#d7191c", "label": "bare"},
    {"min": 0.0, "max": 0.3, "color": "#fdae61", "label": "sparse"},
    {"min": 0.3, "max": 0.6, "color": "#a6d96a", "label": "moderate"},
    {"min": 0.6, "max": 1.0, "color": "#1a9641", "label": "dense"},
]
SLD = "{http://www.opengis.net/sld}"


class ArtifactReader(io.RawIOBase):
    """A seekable read-only file over an artifact, so ``zipfile`` can inspect multi-GB packages
    by reading only their headers and central directory."""

    def __init__(self, artifact: Artifact) -> None:
        self.artifact = artifact
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.artifact.length}[whence]
        self.position = base + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        end = min(self.position + len(buffer), self.artifact.length)
        data = self.artifact.read(self.position, end) if end > self.position else b""
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


def open_geotiff(data: bytes) -> TiffImagePlugin.TiffImageFile:
    image = Image.open(io.BytesIO(data))
    image.load()
    assert isinstance(image, TiffImagePlugin.TiffImageFile)
    return image


# GeoTIFF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "mode"), [("uint16", "I;16"), ("float32", "F"), ("uint8", "L")])
def test_geotiff_opens_with_pillow_and_carries_geotiff_tags(dtype: str, mode: str) -> None:
    image = open_geotiff(make_geotiff(40, 30, seed=3, bbox=BBOX, dtype=dtype))  # type: ignore[arg-type]

    assert image.format == "TIFF"
    assert image.mode == mode
    assert image.size == (40, 30)
    scale_x, scale_y, scale_z = image.tag_v2[33550]
    assert scale_x == pytest.approx((BBOX[2] - BBOX[0]) / 40)
    assert scale_y == pytest.approx((BBOX[3] - BBOX[1]) / 30)
    assert scale_z == 0
    assert image.tag_v2[33922] == pytest.approx((0, 0, 0, BBOX[0], BBOX[3], 0))
    geokeys = image.tag_v2[34735]
    keys = {geokeys[i]: geokeys[i + 3] for i in range(4, len(geokeys), 4)}
    assert geokeys[3] == len(keys) == 3
    assert keys == {1024: 2, 1025: 1, 2048: 4326}


def test_geotiff_pixel_values_follow_the_product_conventions() -> None:
    reflectance = open_geotiff(make_geotiff(32, 32, seed=5, bbox=BBOX, dtype="uint16"))
    low, high = reflectance.getextrema()
    assert isinstance(low, int)
    assert isinstance(high, int)
    assert 0 <= low < high <= 50000  # L2A scaling, divide by 50000

    mask = open_geotiff(make_geotiff(32, 32, seed=5, bbox=BBOX, dtype="uint8"))
    assert set(mask.getdata()) <= {0, 1, 2, 4}
    assert len(set(mask.getdata())) > 1


def test_geotiff_is_deterministic_per_seed() -> None:
    assert make_geotiff(16, 16, seed=1, bbox=BBOX) == make_geotiff(16, 16, seed=1, bbox=BBOX)
    assert make_geotiff(16, 16, seed=1, bbox=BBOX) != make_geotiff(16, 16, seed=2, bbox=BBOX)


@pytest.mark.parametrize(
    ("width", "height", "bbox", "dtype"),
    [(0, 4, BBOX, "uint16"), (4, 4, (1, 1, 0, 2), "uint16"), (4, 4, BBOX, "int64")],
)
def test_geotiff_rejects_bad_arguments(width: int, height: int, bbox: tuple[float, ...], dtype: str) -> None:
    with pytest.raises(ValueError, match=r"size|bbox|dtype"):
        make_geotiff(width, height, seed=0, bbox=bbox, dtype=dtype)  # type: ignore[arg-type]


# Padding CRC ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "length",
    [
        0,
        1,
        9,
        PADDING_BLOCK_SIZE - 1,
        PADDING_BLOCK_SIZE,
        PADDING_BLOCK_SIZE + 1,
        3 * PADDING_BLOCK_SIZE + 17,
    ],
)
def test_padding_crc32_matches_zlib_over_the_generated_bytes(length: int) -> None:
    generated = (
        b"".join(PaddingPart(seed=11, length=length).iter_range(0, length, 1 << 16)) if length else b""
    )

    assert len(generated) == length
    assert padding_crc32(11, length) == zlib.crc32(generated)


def test_padding_blocks_differ_so_misplaced_resumes_are_detectable() -> None:
    padding = PaddingPart(seed=1, length=3 * PADDING_BLOCK_SIZE)
    blocks = [
        b"".join(padding.iter_range(i * PADDING_BLOCK_SIZE, (i + 1) * PADDING_BLOCK_SIZE, PADDING_BLOCK_SIZE))
        for i in range(3)
    ]
    assert len(set(blocks)) == 3


# ZIP package ------------------------------------------------------------------------------------


def natural_package(**kwargs: object) -> Artifact:
    return make_package("pkg-1", filename="package.zip", title="Field survey", seed=4, **kwargs)  # type: ignore[arg-type]


def test_package_at_natural_size_is_a_valid_pixxel_delivery() -> None:
    artifact = natural_package(metadata={"order_id": "o-1", "tags": ["a"]})
    data = artifact.read()

    assert artifact.media_type == "application/zip"
    assert len(data) == artifact.length
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    names = archive.namelist()
    assert names == list(artifact.members)
    assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
    product = names[0].removesuffix(".tif")
    assert names == [
        f"{product}.tif",
        f"{product}.mask.tif",
        f"{product}.geojson",
        f"{product}_metadata.json",
    ]
    # Pixxel's file naming: XXnn_imageID_YYYYMMDD_LnX_YYYYMMDD_aaabbccc
    satellite, image_id, acquired, level, created, code = product.split("_")
    assert (len(satellite), len(image_id), len(acquired), level, len(created), len(code)) == (
        4,
        6,
        8,
        "L2A",
        8,
        8,
    )

    for name in names[:2]:
        image = open_geotiff(archive.read(name))
        assert 33550 in image.tag_v2
        assert 33922 in image.tag_v2
        assert 34735 in image.tag_v2
    document = json.loads(archive.read(names[3]))
    assert document["title"] == "Field survey"
    assert document["properties"] == {"order_id": "o-1", "tags": ["a"]}
    assert document["product_name"] == product
    footprint = json.loads(archive.read(names[2]))
    assert footprint["features"][0]["geometry"]["type"] == "Polygon"
    assert artifact.sha256() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("extra", [1, 120, 168, 169, 5_000_000])
def test_package_padded_to_an_exact_size_stays_a_valid_zip(extra: int) -> None:
    """Covers a gap absorbed by the archive comment, a zero-length raw member and a real one."""
    natural = natural_package().length
    artifact = natural_package(size_bytes=natural + extra)
    data = artifact.read()

    assert artifact.length == len(data) == natural + extra
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    assert archive.namelist()[:4] == list(natural_package().members)


def test_fifty_megabyte_package_hashes_like_its_streamed_bytes(tmp_path: pytest.TempPathFactory) -> None:
    artifact = natural_package(size_bytes=50_000_000)
    target = tmp_path / "package.zip"  # type: ignore[operator]
    digest = hashlib.sha256()
    with open(target, "wb") as handle:
        for chunk in artifact.iter_bytes(chunk_size=3 * 1024 * 1024 + 7):
            digest.update(chunk)
            handle.write(chunk)

    assert target.stat().st_size == artifact.length == 50_000_000
    assert artifact.sha256() == digest.hexdigest()
    with zipfile.ZipFile(target) as archive:
        assert archive.testzip() is None
        padding = archive.infolist()[-1]
        assert padding.filename.endswith(".bin")
        assert padding.file_size > 49_900_000


def test_package_below_its_natural_size_is_refused() -> None:
    with pytest.raises(ValueError, match="natural size"):
        natural_package(size_bytes=100)


def test_iter_bytes_serves_any_range_in_exact_chunks() -> None:
    artifact = natural_package(size_bytes=3 * PADDING_BLOCK_SIZE + 12345)
    data = artifact.read()
    rng = random.Random(7)
    for _ in range(25):
        start = rng.randrange(artifact.length)
        end = rng.randrange(start, artifact.length + 1)
        chunk_size = rng.choice([1000, 65536, PADDING_BLOCK_SIZE, 5 * PADDING_BLOCK_SIZE])
        chunks = list(artifact.iter_bytes(start, end, chunk_size=chunk_size))
        assert b"".join(chunks) == data[start:end]
        assert all(len(chunk) == chunk_size for chunk in chunks[:-1])
        assert not chunks or 0 < len(chunks[-1]) <= chunk_size
    assert list(artifact.iter_bytes(14000, 14003, chunk_size=1)) == [
        bytes([byte]) for byte in data[14000:14003]
    ]
    assert list(artifact.iter_bytes(500, 500)) == []


@pytest.mark.parametrize(
    ("start", "end", "chunk_size"), [(-1, None, 10), (5, 4, 10), (0, 10**12, 10), (0, None, 0)]
)
def test_iter_bytes_rejects_invalid_ranges(start: int, end: int | None, chunk_size: int) -> None:
    with pytest.raises(ValueError, match=r"range|chunk_size"):
        natural_package().iter_bytes(start, end, chunk_size=chunk_size)


@pytest.mark.parametrize("size", [4 * 1024**3 + 12345, 5 * 1024**3])
def test_multi_gigabyte_package_is_cheap_lazy_and_a_valid_zip64(size: int) -> None:
    tracemalloc.start()
    try:
        artifact = natural_package(size_bytes=size)
        head = artifact.iter_bytes()
        first_chunks = [next(head) for _ in range(3)]
        tail = list(artifact.iter_bytes(size - 3 * PADDING_BLOCK_SIZE))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert artifact.length == size
    assert [len(chunk) for chunk in first_chunks] == [1 << 20] * 3
    assert sum(map(len, tail)) == 3 * PADDING_BLOCK_SIZE
    assert peak < 16 * 1024 * 1024  # a few 1 MiB chunks and blocks, nothing the size of the file
    assert tail[-1][-22:-18] == b"PK\x05\x06"  # end of central directory record
    assert struct.unpack("<I", tail[-1][-6:-2])[0] == 0xFFFFFFFF  # offset deferred to ZIP64 records

    with zipfile.ZipFile(ArtifactReader(artifact)) as archive:  # reads headers only
        infos = archive.infolist()
        padding = infos[-1]
        assert padding.filename.endswith(".bin")
        assert padding.file_size == padding.compress_size > size - 20000
        assert padding_crc32(artifact.seed, padding.file_size) == padding.CRC
        for info in infos[:-1]:
            assert zlib.crc32(archive.read(info)) == info.CRC
        with archive.open(padding) as member:
            assert len(member.read(1000)) == 1000


def test_sha256_is_cached_per_artifact() -> None:
    artifact = natural_package(size_bytes=2_000_000)
    expected = hashlib.sha256(artifact.read()).hexdigest()
    assert artifact.sha256() == expected
    # A second artifact object with the same id and content reuses the cached digest.
    assert natural_package(size_bytes=2_000_000).sha256() == expected


def test_etag_is_strong_quoted_and_tracks_content() -> None:
    first = natural_package()
    assert first.etag.startswith('"')
    assert first.etag.endswith('"')
    assert not first.etag.startswith("W/")
    assert natural_package().etag == first.etag
    assert natural_package(metadata={"x": 1}).etag != first.etag
    assert natural_package(size_bytes=first.length + 500).etag != first.etag


def test_single_file_wraps_ready_bytes() -> None:
    artifact = single_file("r-1", filename="report.csv", media_type="text/csv", content=b"a,b\r\n1,2\r\n")

    assert artifact.length == 10
    assert artifact.read() == b"a,b\r\n1,2\r\n"
    assert artifact.read(5, 8) == b"1,2"
    assert artifact.members == ()
    assert artifact.sha256() == hashlib.sha256(b"a,b\r\n1,2\r\n").hexdigest()


# PNG --------------------------------------------------------------------------------------------


def test_index_png_is_a_real_png_in_the_legend_colours() -> None:
    data = render_index_png(width=320, height=200, legend=LEGEND, seed=9)
    image = Image.open(io.BytesIO(data))
    image.load()

    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert image.format == "PNG"
    assert image.size == (320, 200)
    rgb = image.convert("RGB")
    legend_colours = [tuple(int(entry["color"][i : i + 2], 16) for i in (1, 3, 5)) for entry in LEGEND]
    present = {colour for _, colour in rgb.getcolors(maxcolors=1024) or []}
    assert set(legend_colours) <= present
    assert present <= {*legend_colours, (0, 0, 0)}
    # The legend strip along the bottom shows the entries left to right.
    bottom = [rgb.getpixel((x, 199)) for x in (20, 100, 180, 300)]
    assert bottom == legend_colours
    # The field itself (above the strip) uses more than one bin.
    field_colours = {rgb.getpixel((x, y)) for x in range(0, 320, 8) for y in range(0, 180, 8)}
    assert len(field_colours & set(legend_colours)) >= 2


def test_index_png_is_deterministic_per_seed() -> None:
    assert render_index_png(width=64, height=48, legend=LEGEND, seed=1) == render_index_png(
        width=64, height=48, legend=LEGEND, seed=1
    )
    assert render_index_png(width=64, height=48, legend=LEGEND, seed=1) != render_index_png(
        width=64, height=48, legend=LEGEND, seed=2
    )


@pytest.mark.parametrize(
    "legend",
    [[], [{"min": 0, "max": 1, "color": "green", "label": "x"}], [{"min": 1, "max": 0, "color": "#fff"}]],
)
def test_index_png_rejects_bad_legends(legend: list[dict[str, object]]) -> None:
    with pytest.raises(ValueError, match=r"legend|colour|max < min"):
        render_index_png(width=8, height=8, legend=legend, seed=0)


# SLD and CSV ------------------------------------------------------------------------------------


def test_sld_is_well_formed_with_a_colour_map_of_the_legend() -> None:
    legend = [*LEGEND[:-1], {**LEGEND[-1], "label": "dense & <lush>"}]
    root = ElementTree.fromstring(render_sld(layer_name="ndvi_2024_05_06", legend=legend))

    assert root.tag == f"{SLD}StyledLayerDescriptor"
    assert root.get("version") == "1.0.0"
    assert root.findtext(f"{SLD}NamedLayer/{SLD}Name") == "ndvi_2024_05_06"
    entries = root.findall(f".//{SLD}RasterSymbolizer/{SLD}ColorMap/{SLD}ColorMapEntry")
    assert [entry.get("color") for entry in entries] == [entry["color"] for entry in legend]
    assert [float(entry.get("quantity", "nan")) for entry in entries] == [entry["max"] for entry in legend]
    assert entries[-1].get("label") == "dense & <lush>"


def test_order_report_is_csv_with_a_header() -> None:
    rows: list[dict[str, Any]] = [
        {"order_id": "o-1", "status": "PAID", "total_amount": 120.5, "tags": ["x", "y"]},
        {"order_id": "o-2", "status": "UNPAID", "paid_at": None, "note": 'say "hi", ok'},
    ]
    parsed = list(csv.reader(io.StringIO(render_order_report(rows))))

    assert parsed[0] == ["order_id", "status", "total_amount", "tags", "paid_at", "note"]
    assert parsed[1] == ["o-1", "PAID", "120.5", '["x", "y"]', "", ""]
    assert parsed[2] == ["o-2", "UNPAID", "", "", "", 'say "hi", ok']


def test_empty_order_report_still_has_the_default_header() -> None:
    assert list(csv.reader(io.StringIO(render_order_report([])))) == [list(DEFAULT_REPORT_COLUMNS)]
