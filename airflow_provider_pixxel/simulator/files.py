"""Real, deterministic file contents for the Pixxel API simulator.

Everything the simulator hands out through a signed URL or renders on the fly is built here:

* :func:`make_package` - a ZIP delivery package (stored, no compression) holding small but valid
  GeoTIFFs named like Pixxel products, a GeoJSON footprint, a JSON metadata file and, when a target
  size is asked for, a raw band member that brings the archive to exactly that many bytes (ZIP64 past
  4 GiB). Only the raw band member is large, and it is never held in memory: its bytes are generated
  block by block from the seed, and its CRC-32 is derived arithmetically (see :func:`padding_crc32`),
  so a multi-GB package costs milliseconds to create and constant memory to stream from any offset.
* :func:`make_geotiff`, :func:`render_index_png`, :func:`render_sld`, :func:`render_order_report`,
  :func:`single_file` - the smaller artefacts.

The same arguments always give the same bytes, so a client's checksum of a (resumed) download can be
compared with :meth:`Artifact.sha256`.
"""

from __future__ import annotations

import array
import csv
import datetime as dt
import functools
import hashlib
import io
import json
import math
import random
import re
import struct
import sys
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DEFAULT_REPORT_COLUMNS",
    "PADDING_BLOCK_SIZE",
    "Artifact",
    "BytesPart",
    "PaddingPart",
    "make_geotiff",
    "make_package",
    "padding_crc32",
    "render_index_png",
    "render_order_report",
    "render_sld",
    "single_file",
]

#: Size of one generated block of padding; every block starts with its own index, so a client that
#: stitches a resumed download at the wrong offset gets a different checksum.
PADDING_BLOCK_SIZE = 1 << 20
_BLOCK_HEADER = struct.Struct("<Q")

_ZIP64_LIMIT = 0xFFFFFFFF


# --------------------------------------------------------------------------------------------------
# Artifact: a byte stream described by parts


@dataclass(frozen=True)
class BytesPart:
    """Literal bytes (headers, small files, a central directory)."""

    data: bytes = field(repr=False)

    @property
    def length(self) -> int:
        """Number of bytes in this part."""
        return len(self.data)

    def digest_input(self) -> bytes:
        """Bytes that identify this part's content, for the artifact's ETag."""
        return b"bytes:" + hashlib.sha256(self.data).digest()

    def iter_range(self, start: int, end: int, chunk_size: int) -> Iterator[bytes | memoryview]:
        """Yield ``data[start:end]`` in pieces of at most ``chunk_size`` bytes (views, not copies)."""
        view = memoryview(self.data)
        for offset in range(start, end, chunk_size):
            yield view[offset : min(offset + chunk_size, end)]


@dataclass(frozen=True)
class PaddingPart:
    """``length`` pseudo-random bytes generated from ``seed`` in blocks of :data:`PADDING_BLOCK_SIZE`."""

    seed: int
    length: int

    def digest_input(self) -> bytes:
        """Bytes that identify this part's content, for the artifact's ETag."""
        return f"padding:{self.seed}:{self.length}".encode()

    def iter_range(self, start: int, end: int, chunk_size: int) -> Iterator[bytes | memoryview]:
        """Yield bytes ``[start, end)`` of the padding, generating one block at a time."""
        first_block, last_block = start // PADDING_BLOCK_SIZE, (end - 1) // PADDING_BLOCK_SIZE
        for index in range(first_block, last_block + 1):
            block_start = index * PADDING_BLOCK_SIZE
            view = memoryview(_padding_block(self.seed, index))
            low = max(start, block_start) - block_start
            high = min(end, block_start + PADDING_BLOCK_SIZE) - block_start
            for offset in range(low, high, chunk_size):
                yield view[offset : min(offset + chunk_size, high)]


ArtifactPart = BytesPart | PaddingPart

_SHA256_CACHE: dict[tuple[str, str], str] = {}
_SHA256_LOCK = threading.Lock()


@dataclass(frozen=True)
class Artifact:
    """A downloadable file whose bytes are fully determined by its parts.

    ``members`` lists the file names inside a package (empty for a single file). ``length`` and
    ``etag`` are computed from the parts without generating the content.
    """

    artifact_id: str
    filename: str
    media_type: str
    parts: tuple[ArtifactPart, ...] = field(repr=False)
    members: tuple[str, ...] = ()
    seed: int = 0
    _length: int = field(init=False, repr=False, compare=False)
    _etag: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(self.media_type.encode())
        for part in self.parts:
            digest.update(part.digest_input())
        object.__setattr__(self, "_length", sum(part.length for part in self.parts))
        object.__setattr__(self, "_etag", f'"{digest.hexdigest()[:40]}"')

    @property
    def length(self) -> int:
        """Exact size in bytes."""
        return self._length

    @property
    def etag(self) -> str:
        """Strong, quoted entity tag; changes whenever the content would change."""
        return self._etag

    def iter_bytes(
        self, start: int = 0, end: int | None = None, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        """Yield bytes ``[start, end)`` in chunks of exactly ``chunk_size`` (the last may be shorter).

        Content is generated lazily, so memory stays bounded by a couple of chunks and one padding
        block whatever the artifact's size.
        """
        end = self.length if end is None else end
        if not 0 <= start <= end <= self.length:
            raise ValueError(f"range [{start}, {end}) is outside 0..{self.length}")
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        return _rechunk(self._iter_pieces(start, end, chunk_size), chunk_size)

    def _iter_pieces(self, start: int, end: int, chunk_size: int) -> Iterator[bytes | memoryview]:
        part_start = 0
        for part in self.parts:
            part_end = part_start + part.length
            if part_end > start and part_start < end:
                yield from part.iter_range(
                    max(start, part_start) - part_start, min(end, part_end) - part_start, chunk_size
                )
            if part_end >= end:
                return
            part_start = part_end

    def read(self, start: int = 0, end: int | None = None) -> bytes:
        """Return bytes ``[start, end)`` in one piece (only sensible for small ranges)."""
        return b"".join(self.iter_bytes(start, end))

    def sha256(self) -> str:
        """Hex SHA-256 of the full content, computed by streaming once and cached per artifact."""
        key = (self.artifact_id, self.etag)
        with _SHA256_LOCK:
            cached = _SHA256_CACHE.get(key)
        if cached is not None:
            return cached
        digest = hashlib.sha256()
        for chunk in self.iter_bytes():
            digest.update(chunk)
        result = digest.hexdigest()
        with _SHA256_LOCK:
            _SHA256_CACHE[key] = result
        return result


def _rechunk(pieces: Iterable[bytes | memoryview], chunk_size: int) -> Iterator[bytes]:
    """Regroup pieces into ``chunk_size`` chunks, copying each byte once."""
    pending: list[memoryview] = []
    pending_length = 0
    for piece in pieces:
        view = memoryview(piece)
        while view:
            take = view[: chunk_size - pending_length]
            pending.append(take)
            pending_length += len(take)
            view = view[len(take) :]
            if pending_length == chunk_size:
                yield b"".join(pending)
                pending, pending_length = [], 0
    if pending:
        yield b"".join(pending)


def single_file(artifact_id: str, *, filename: str, media_type: str, content: bytes) -> Artifact:
    """Wrap small, ready-made bytes (a rendered PNG, a CSV report) as an :class:`Artifact`."""
    return Artifact(
        artifact_id=artifact_id, filename=filename, media_type=media_type, parts=(BytesPart(content),)
    )


# --------------------------------------------------------------------------------------------------
# Padding: block generation and an O(blocks) CRC-32 that never generates the blocks


@functools.lru_cache(maxsize=8)
def _padding_body(seed: int) -> bytes:
    """The seeded bytes every padding block shares after its 8-byte index."""
    stream = hashlib.shake_256(f"pixxel-simulator-padding:{seed}".encode())
    return stream.digest(PADDING_BLOCK_SIZE)[_BLOCK_HEADER.size :]


def _padding_block(seed: int, index: int) -> bytes:
    return b"".join((_BLOCK_HEADER.pack(index), _padding_body(seed)))


def _gf2_times(matrix: Sequence[int], vector: int) -> int:
    total = 0
    row = 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def _gf2_compose(outer: Sequence[int], inner: Sequence[int]) -> list[int]:
    return [_gf2_times(outer, column) for column in inner]


@functools.lru_cache(maxsize=64)
def _crc32_zeros_operator(byte_count: int) -> tuple[int, ...]:
    """The GF(2) operator that advances a CRC-32 register over ``byte_count`` zero bytes (as zlib's
    ``crc32_combine`` builds it), so ``crc(A + B) == apply(op(len(B)), crc(A)) ^ crc(B)``."""
    one_bit = [0xEDB88320] + [1 << bit for bit in range(31)]
    power = one_bit
    for _ in range(3):
        power = _gf2_compose(power, power)
    result = [1 << bit for bit in range(32)]
    remaining = byte_count
    while remaining:
        if remaining & 1:
            result = _gf2_compose(power, result)
        remaining >>= 1
        if remaining:
            power = _gf2_compose(power, power)
    return tuple(result)


def _crc32_combine(crc_first: int, crc_second: int, second_length: int) -> int:
    return _gf2_times(_crc32_zeros_operator(second_length), crc_first) ^ crc_second


@functools.lru_cache(maxsize=64)
def padding_crc32(seed: int, length: int) -> int:
    """CRC-32 of the first ``length`` padding bytes for ``seed``, without generating them.

    Every full block is its 8-byte index followed by the same seeded bytes, so its CRC is the
    combination of the index's CRC and one precomputed CRC; the blocks are then chained with a
    single precomputed shift operator. A 4 GiB member takes a few tens of milliseconds.
    """
    full_blocks, tail = divmod(length, PADDING_BLOCK_SIZE)
    body_crc = zlib.crc32(_padding_body(seed))
    body_shift = _crc32_zeros_operator(PADDING_BLOCK_SIZE - _BLOCK_HEADER.size)
    block_shift = _crc32_zeros_operator(PADDING_BLOCK_SIZE)
    crc = 0
    for index in range(full_blocks):
        block_crc = _gf2_times(body_shift, zlib.crc32(_BLOCK_HEADER.pack(index))) ^ body_crc
        crc = _gf2_times(block_shift, crc) ^ block_crc
    if tail:
        crc = _crc32_combine(crc, zlib.crc32(_padding_block(seed, full_blocks)[:tail]), tail)
    return crc


# --------------------------------------------------------------------------------------------------
# Smooth synthetic fields


def _wave_profile(rng: random.Random, size: int) -> list[float]:
    """A smooth 1-D profile in [-1, 1] built from two seeded sinusoids."""
    waves = [(rng.uniform(0.5, 2.5), rng.uniform(0, 2 * math.pi), weight) for weight in (0.65, 0.35)]
    return [
        sum(
            weight * math.sin(2 * math.pi * cycles * position / max(size, 1) + phase)
            for cycles, phase, weight in waves
        )
        for position in range(size)
    ]


# --------------------------------------------------------------------------------------------------
# GeoTIFF

_TIFF_SHORT, _TIFF_LONG, _TIFF_DOUBLE = 3, 4, 12
_TIFF_TYPE_FORMAT = {_TIFF_SHORT: "H", _TIFF_LONG: "I", _TIFF_DOUBLE: "d"}
_GEOTIFF_PIXEL_SCALE, _GEOTIFF_TIEPOINT, _GEOTIFF_KEY_DIRECTORY = 33550, 33922, 34735
_EPSG_WGS84 = 4326

GeoTiffDType = Literal["uint8", "uint16", "float32"]
# dtype -> (array typecode, bits per sample, TIFF SampleFormat)
_DTYPES: dict[str, tuple[str, int, int]] = {
    "uint8": ("B", 8, 1),
    "uint16": ("H", 16, 1),
    "float32": ("f", 32, 3),
}

#: L2A reflectance is delivered scaled to 0-50000 (divide by 50000), as Pixxel's product guide says.
_REFLECTANCE_SCALE = 50000


def make_geotiff(
    width: int,
    height: int,
    *,
    seed: int,
    bbox: Sequence[float],
    dtype: GeoTiffDType = "uint16",
) -> bytes:
    """A baseline little-endian TIFF, one band, uncompressed, one strip, georeferenced in EPSG:4326.

    ``bbox`` is ``(min_lon, min_lat, max_lon, max_lat)``. The pixels are a smooth seeded field:
    ``uint16`` holds L2A-style reflectance scaled to 0..50000, ``float32`` unscaled reflectance in
    0..1, and ``uint8`` a bit-encoded quality mask (1 cloud, 2 shadow, 4 water). The GeoTIFF tags
    ModelPixelScale (33550), ModelTiepoint (33922) and GeoKeyDirectory (34735) are written.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    min_lon, min_lat, max_lon, max_lat = (float(value) for value in bbox)
    if not (min_lon < max_lon and min_lat < max_lat):
        raise ValueError(f"bbox must be (min_lon, min_lat, max_lon, max_lat), got {tuple(bbox)}")
    typecode, bits, sample_format = _DTYPES[dtype]

    rng = random.Random(seed)
    columns, rows = _wave_profile(rng, width), _wave_profile(rng, height)
    pixels: array.array[Any] = array.array(typecode)
    for row_value in rows:
        # field in [0, 1]
        line = [(column_value + row_value + 2.0) / 4.0 for column_value in columns]
        if dtype == "uint16":
            pixels.extend(round(value * _REFLECTANCE_SCALE) for value in line)
        elif dtype == "float32":
            pixels.extend(line)
        else:
            pixels.extend(
                (value > 0.7) | ((value < 0.2) << 1) | ((0.35 < value < 0.4) << 2) for value in line
            )
    if sys.byteorder == "big":
        pixels.byteswap()
    image = pixels.tobytes()

    geokeys = [1, 1, 0, 3, 1024, 0, 1, 2, 1025, 0, 1, 1, 2048, 0, 1, _EPSG_WGS84]
    entries: list[tuple[int, int, Sequence[float]]] = [
        (256, _TIFF_LONG, [width]),
        (257, _TIFF_LONG, [height]),
        (258, _TIFF_SHORT, [bits]),
        (259, _TIFF_SHORT, [1]),  # no compression
        (262, _TIFF_SHORT, [1]),  # BlackIsZero
        (273, _TIFF_LONG, [0]),  # strip offset, patched below
        (277, _TIFF_SHORT, [1]),
        (278, _TIFF_LONG, [height]),
        (279, _TIFF_LONG, [len(image)]),
        (284, _TIFF_SHORT, [1]),
        (339, _TIFF_SHORT, [sample_format]),
        (
            _GEOTIFF_PIXEL_SCALE,
            _TIFF_DOUBLE,
            [(max_lon - min_lon) / width, (max_lat - min_lat) / height, 0.0],
        ),
        (_GEOTIFF_TIEPOINT, _TIFF_DOUBLE, [0.0, 0.0, 0.0, min_lon, max_lat, 0.0]),
        (_GEOTIFF_KEY_DIRECTORY, _TIFF_SHORT, geokeys),
    ]
    header_size, ifd_offset = 8, 8
    ifd_size = 2 + 12 * len(entries) + 4
    extra = bytearray()
    extra_start = ifd_offset + ifd_size
    encoded: list[tuple[int, int, int, bytes]] = []
    for tag, kind, values in entries:
        payload = struct.pack(f"<{len(values)}{_TIFF_TYPE_FORMAT[kind]}", *values)
        encoded.append((tag, kind, len(values), payload))
        if len(payload) > 4:
            extra += payload + b"\0" * (len(payload) % 2)
    image_offset = extra_start + len(extra)
    image_offset += image_offset % 2

    ifd = bytearray(struct.pack("<H", len(entries)))
    extra_cursor = extra_start
    for tag, kind, count, payload in encoded:
        if tag == 273:
            payload = struct.pack("<I", image_offset)
        if len(payload) <= 4:
            ifd += struct.pack("<HHI", tag, kind, count) + payload.ljust(4, b"\0")
        else:
            ifd += struct.pack("<HHII", tag, kind, count, extra_cursor)
            extra_cursor += len(payload) + len(payload) % 2
    ifd += struct.pack("<I", 0)
    head = b"II" + struct.pack("<HI", 42, ifd_offset)
    assert len(head) == header_size
    assert len(ifd) == ifd_size
    body = head + bytes(ifd) + bytes(extra)
    return body.ljust(image_offset, b"\0") + image


# --------------------------------------------------------------------------------------------------
# ZIP package


@dataclass(frozen=True)
class _Member:
    name: bytes
    crc: int
    size: int
    offset: int
    zip64: bool


def _dos_date(moment: dt.date) -> int:
    """MS-DOS date field; every member is stamped at midnight (time field 0)."""
    return ((moment.year - 1980) << 9) | (moment.month << 5) | moment.day


def _local_header(member: _Member, date: int) -> bytes:
    if member.zip64:
        extra = struct.pack("<HHQQ", 0x0001, 16, member.size, member.size)
        size_field, version = _ZIP64_LIMIT, 45
    else:
        extra, size_field, version = b"", member.size, 20
    fixed = struct.pack(
        "<IHHHHHIIIHH",
        0x04034B50,
        version,
        0,
        0,
        0,
        date,
        member.crc,
        size_field,
        size_field,
        len(member.name),
        len(extra),
    )
    return fixed + member.name + extra


def _central_header(member: _Member, date: int) -> bytes:
    if member.zip64:
        extra = struct.pack("<HHQQ", 0x0001, 16, member.size, member.size)
        size_field, version = _ZIP64_LIMIT, 45
    else:
        extra, size_field, version = b"", member.size, 20
    external_attributes = 0o100644 << 16
    fixed = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        (3 << 8) | version,
        version,
        0,
        0,
        0,
        date,
        member.crc,
        size_field,
        size_field,
        len(member.name),
        len(extra),
        0,
        0,
        0,
        external_attributes,
        member.offset,
    )
    return fixed + member.name + extra


def _end_records(
    entries: int, directory_offset: int, directory_size: int, zip64: bool, comment: bytes
) -> bytes:
    records = b""
    if zip64:
        eocd64_offset = directory_offset + directory_size
        records += struct.pack(
            "<IQHHIIQQQQ",
            0x06064B50,
            44,
            (3 << 8) | 45,
            45,
            0,
            0,
            entries,
            entries,
            directory_size,
            directory_offset,
        )
        records += struct.pack("<IIQI", 0x07064B50, 0, eocd64_offset, 1)
        directory_offset = _ZIP64_LIMIT
    records += struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, entries, entries, directory_size, directory_offset, len(comment)
    )
    return records + comment


def _padding_overhead(name: bytes, zip64: bool) -> int:
    """Bytes a padding member adds besides its data: both headers, and the ZIP64 end records."""
    probe = _Member(name=name, crc=0, size=0, offset=0, zip64=zip64)
    return len(_local_header(probe, 0)) + len(_central_header(probe, 0)) + (56 + 20 if zip64 else 0)


def _build_zip(
    artifact_id: str,
    filename: str,
    files: Sequence[tuple[str, bytes]],
    *,
    date: dt.date,
    size_bytes: int | None,
    padding_name: str,
    padding_seed: int,
    seed: int,
) -> Artifact:
    dos_date = _dos_date(date)
    head = bytearray()
    members: list[_Member] = []
    for name, data in files:
        member = _Member(name.encode(), zlib.crc32(data), len(data), len(head), zip64=False)
        members.append(member)
        head += _local_header(member, dos_date) + data
    natural_directory = b"".join(_central_header(member, dos_date) for member in members)
    natural_size = len(head) + len(natural_directory) + len(_end_records(0, 0, 0, False, b""))

    target = natural_size if size_bytes is None else size_bytes
    if target < natural_size:
        raise ValueError(f"size_bytes={size_bytes} is smaller than the package's natural size {natural_size}")
    gap = target - natural_size
    zip64 = target >= _ZIP64_LIMIT
    padding_name_bytes = padding_name.encode()
    padding_length = gap - _padding_overhead(padding_name_bytes, zip64)
    comment = b""
    parts: list[ArtifactPart] = []
    if gap and padding_length < 0:
        # Too small a gap for a member: the archive comment (up to 65535 bytes) absorbs it.
        comment = (b"pixxel-simulator " * (gap // 17 + 1))[:gap]
    elif gap:
        member = _Member(
            padding_name_bytes,
            padding_crc32(padding_seed, padding_length),
            padding_length,
            len(head),
            zip64=zip64,
        )
        members.append(member)
        head += _local_header(member, dos_date)
        parts = [BytesPart(bytes(head)), PaddingPart(padding_seed, padding_length)]
    if not parts:
        parts = [BytesPart(bytes(head))]

    directory_offset = sum(part.length for part in parts)
    directory = b"".join(_central_header(member, dos_date) for member in members)
    tail = directory + _end_records(len(members), directory_offset, len(directory), zip64, comment)
    parts.append(BytesPart(tail))
    artifact = Artifact(
        artifact_id=artifact_id,
        filename=filename,
        media_type="application/zip",
        parts=tuple(parts),
        members=tuple(member.name.decode() for member in members),
        seed=seed,
    )
    assert artifact.length == target, (artifact.length, target)
    return artifact


def _product_name(artifact_id: str, seed: int) -> tuple[str, dt.date]:
    """``FF01_<imageID>_<acquired>_L2A_<created>_00501150`` (5 m, version 01, 150 bands).

    Pixxel's file naming: ``XXnn_imageID_YYYYMMDD_LnX_YYYYMMDD_aaabbccc`` (satellite, image id, acquired,
    level, created, then resolution ``aaa``, version ``bb`` and band count ``ccc``).
    """
    image_id = (
        int.from_bytes(hashlib.sha256(f"{artifact_id}:{seed}".encode()).digest()[:4], "big") % 1_000_000
    )
    acquired = dt.date(2024, 1, 1) + dt.timedelta(days=seed % 365)
    created = acquired + dt.timedelta(days=1)
    return f"FF01_{image_id:06d}_{acquired:%Y%m%d}_L2A_{created:%Y%m%d}_00501150", created


def _default_bbox(seed: int) -> tuple[float, float, float, float]:
    rng = random.Random(seed)
    min_lon, min_lat = round(77.4 + rng.uniform(0, 0.2), 4), round(12.8 + rng.uniform(0, 0.2), 4)
    return (min_lon, min_lat, round(min_lon + 0.05, 4), round(min_lat + 0.05, 4))


def make_package(
    artifact_id: str,
    *,
    filename: str,
    title: str,
    size_bytes: int | None = None,
    seed: int = 0,
    metadata: Mapping[str, Any] | None = None,
    product_name: str | None = None,
    bbox: Sequence[float] | None = None,
    image_size: int = 64,
) -> Artifact:
    """A Pixxel-style delivery package: a stored (uncompressed) ZIP archive.

    Members: ``<product>.tif`` (uint16 reflectance GeoTIFF), ``<product>.mask.tif`` (uint8 quality
    mask GeoTIFF), ``<product>.geojson`` (footprint) and ``<product>_metadata.json``. When
    ``size_bytes`` exceeds the natural size, a raw band member ``<product>.bin`` (or, for gaps too
    small for a member, the archive comment) makes the archive exactly ``size_bytes`` long; ZIP64
    records are written once the archive reaches 4 GiB. ``metadata`` is embedded under
    ``"properties"`` in the JSON file and must be JSON-serialisable (other values become strings).
    """
    derived_name, created = _product_name(artifact_id, seed)
    product = product_name or derived_name
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", product):
        raise ValueError(f"product_name must be a plain file stem, got {product!r}")
    box = tuple(float(value) for value in (bbox or _default_bbox(seed)))
    image = make_geotiff(image_size, image_size, seed=seed, bbox=box, dtype="uint16")
    mask = make_geotiff(image_size, image_size, seed=seed + 1, bbox=box, dtype="uint8")
    min_lon, min_lat, max_lon, max_lat = box
    ring = [
        [min_lon, min_lat],
        [max_lon, min_lat],
        [max_lon, max_lat],
        [min_lon, max_lat],
        [min_lon, min_lat],
    ]
    footprint = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"id": product},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        ],
    }
    document = {
        "artifact_id": artifact_id,
        "title": title,
        "product_name": product,
        "processing_level": "L2A",
        "scale_factor": 1 / _REFLECTANCE_SCALE,
        "crs": f"EPSG:{_EPSG_WGS84}",
        "bbox": list(box),
        "files": [
            {"name": f"{product}.tif", "role": "data", "type": "image/tiff; application=geotiff"},
            {
                "name": f"{product}.mask.tif",
                "role": "quality-mask",
                "type": "image/tiff; application=geotiff",
                "mask_bits": {"cloud": 1, "shadow": 2, "water": 4},
            },
            {"name": f"{product}.geojson", "role": "footprint", "type": "application/geo+json"},
        ],
        "properties": dict(metadata or {}),
    }
    files = [
        (f"{product}.tif", image),
        (f"{product}.mask.tif", mask),
        (f"{product}.geojson", json.dumps(footprint, sort_keys=True).encode()),
        (f"{product}_metadata.json", json.dumps(document, sort_keys=True, indent=2, default=str).encode()),
    ]
    return _build_zip(
        artifact_id,
        filename,
        files,
        date=created,
        size_bytes=size_bytes,
        padding_name=f"{product}.bin",
        padding_seed=seed,
        seed=seed,
    )


# --------------------------------------------------------------------------------------------------
# PNG with legend

_HEX_COLOUR = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")


def parse_colour(value: str) -> tuple[int, int, int]:
    """``"#rrggbb"`` or ``"#rgb"`` to an RGB triple."""
    match = _HEX_COLOUR.fullmatch(value.strip())
    if not match:
        raise ValueError(f"not a #rrggbb colour: {value!r}")
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def _validated_legend(
    legend: Sequence[Mapping[str, Any]],
) -> list[tuple[float, float, tuple[int, int, int], str]]:
    if not legend:
        raise ValueError("legend must have at least one entry")
    if len(legend) > 254:
        raise ValueError("legend can have at most 254 entries")
    bins = []
    for entry in legend:
        low, high = float(entry["min"]), float(entry["max"])
        if high < low:
            raise ValueError(f"legend entry has max < min: {dict(entry)}")
        bins.append((low, high, parse_colour(str(entry["color"])), str(entry.get("label", ""))))
    return bins


def _bin_index(value: float, bins: Sequence[tuple[float, float, Any, Any]]) -> int:
    for index, (low, high, _, _) in enumerate(bins):
        if low <= value < high:
            return index
    return min(
        range(len(bins)), key=lambda index: min(abs(value - bins[index][0]), abs(value - bins[index][1]))
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def render_index_png(*, width: int, height: int, legend: Sequence[Mapping[str, Any]], seed: int) -> bytes:
    """A palette PNG of a smooth seeded index field coloured by the legend's bins.

    Values span the legend's range; each pixel takes the colour of the bin ``min <= v < max`` that
    holds it. A strip along the bottom (about 1/16 of the height) shows every legend colour in order
    above a one-pixel black rule. Written with ``zlib`` and ``struct`` only.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    bins = _validated_legend(legend)
    low, high = min(item[0] for item in bins), max(item[1] for item in bins)
    black = len(bins)

    # level in 0..254 = column level (0..127) + row level (0..127): each row is a byte translation.
    rng = random.Random(seed)
    column_levels = bytes(round((value + 1) * 63.5) for value in _wave_profile(rng, width))
    row_levels = [round((value + 1) * 63.5) for value in _wave_profile(rng, height)]
    level_bins = [_bin_index(low + (high - low) * level / 254, bins) for level in range(255)]
    tables: dict[int, bytes] = {}

    strip_height = max(1, height // 16) if height >= 4 else 0
    rule_row = height - strip_height - 1 if strip_height and height - strip_height - 1 >= 0 else None
    strip_row = bytearray(width)
    for index in range(len(bins)):
        left, right = index * width // len(bins), (index + 1) * width // len(bins)
        strip_row[left:right] = bytes([index]) * (right - left)

    raw = bytearray()
    for y in range(height):
        raw.append(0)  # filter: none
        if y >= height - strip_height:
            raw += strip_row
        elif y == rule_row:
            raw += bytes([black]) * width
        else:
            offset = row_levels[y]
            table = tables.get(offset)
            if table is None:
                table = bytes(level_bins[min(level + offset, 254)] for level in range(256))
                tables[offset] = table
            raw += column_levels.translate(table)

    palette = b"".join(bytes(colour) for _, _, colour, _ in bins) + b"\x00\x00\x00"
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0))
        + _png_chunk(b"PLTE", palette)
        + _png_chunk(b"tEXt", b"Software\x00pixxel-simulator")
        + _png_chunk(b"IDAT", zlib.compress(bytes(raw), 6))
        + _png_chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------------------------------
# SLD

_SLD_NAMESPACE = "http://www.opengis.net/sld"


def render_sld(*, layer_name: str, legend: Sequence[Mapping[str, Any]]) -> str:
    """An SLD 1.0.0 ``StyledLayerDescriptor`` with one ``RasterSymbolizer`` ``ColorMap``.

    The colour map is of type ``intervals``: each legend entry becomes a ``ColorMapEntry`` whose
    ``quantity`` is the bin's upper bound, so pixels up to that value take its colour.
    """
    import xml.etree.ElementTree as ElementTree

    bins = _validated_legend(legend)

    def child(
        parent: ElementTree.Element, tag: str, text: str | None = None, **attributes: str
    ) -> ElementTree.Element:
        element = ElementTree.SubElement(parent, tag, attributes)
        element.text = text
        return element

    # ElementTree cannot put unprefixed attributes in a default namespace, so the namespace is
    # declared as a plain attribute on unqualified tags; parsers still see every tag in it.
    root = ElementTree.Element(
        "StyledLayerDescriptor",
        {
            "version": "1.0.0",
            "xmlns": _SLD_NAMESPACE,
            "xmlns:ogc": "http://www.opengis.net/ogc",
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xsi:schemaLocation": f"{_SLD_NAMESPACE} http://schemas.opengis.net/sld/1.0.0/StyledLayerDescriptor.xsd",
        },
    )
    layer = child(root, "NamedLayer")
    child(layer, "Name", layer_name)
    style = child(layer, "UserStyle")
    child(style, "Name", layer_name)
    child(style, "Title", f"{layer_name} legend")
    rule = child(child(style, "FeatureTypeStyle"), "Rule")
    symbolizer = child(rule, "RasterSymbolizer")
    child(symbolizer, "Opacity", "1.0")
    colour_map = child(symbolizer, "ColorMap", type="intervals")
    for _, high, colour, label in bins:
        child(
            colour_map,
            "ColorMapEntry",
            color="#{:02x}{:02x}{:02x}".format(*colour),
            quantity=repr(high),
            label=label,
            opacity="1.0",
        )
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True)


# --------------------------------------------------------------------------------------------------
# CSV order report

#: Columns used when the report has no rows to take them from.
DEFAULT_REPORT_COLUMNS = (
    "order_id",
    "order_name",
    "order_item_id",
    "order_item_name",
    "order_type",
    "status",
    "project_id",
    "total_amount",
    "tokens_used",
    "created_at",
    "paid_at",
)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def render_order_report(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """CSV with a header row. Columns default to every key in ``rows`` in order of first appearance
    (or :data:`DEFAULT_REPORT_COLUMNS` when there are none); missing and ``None`` cells are empty,
    lists and objects are written as JSON."""
    if columns is None:
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row))
        columns = list(seen) or list(DEFAULT_REPORT_COLUMNS)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(column)) for column in columns])
    return buffer.getvalue()
