"""Archive safety: hostile zips on their own, then served over HTTP to the download routine."""

from __future__ import annotations

import stat
import struct
import zipfile
from pathlib import Path

import pytest

from airflow_provider_pixxel.hooks.download import (
    MANIFEST_NAME,
    PixxelUnsafeArchiveError,
    download,
    safe_extract_zip,
)
from airflow_provider_pixxel.simulator.files import Artifact, single_file
from tests.hooks.download.support import (
    _FileServer,
    _listing,
    _sha,
    _typed_member,
    _write_zip,
    _zip_bytes,
)

# -- safe_extract_zip ---------------------------------------------------------------------------------


def test_safe_extract_zip_extracts_nested_members_with_digests(tmp_path: Path) -> None:
    archive = _write_zip(
        tmp_path / "pkg.zip",
        [("a.tif", b"band data"), ("sub/", b""), ("sub/b.geojson", b'{"type": "Feature"}')],
        compression=zipfile.ZIP_DEFLATED,
    )

    files = safe_extract_zip(archive, tmp_path / "out", max_bytes=1024, max_members=10)

    assert files == [
        {"path": "a.tif", "size": 9, "sha256": _sha(b"band data")},
        {"path": "sub/b.geojson", "size": 19, "sha256": _sha(b'{"type": "Feature"}')},
    ]
    assert (tmp_path / "out" / "sub" / "b.geojson").read_bytes() == b'{"type": "Feature"}'


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        pytest.param("../evil.txt", "'..'", id="parent-dir"),
        pytest.param("ok/../../evil.txt", "'..'", id="nested-parent-dir"),
        pytest.param("..\\evil.txt", "'..'", id="windows-parent-dir"),
        pytest.param("/etc/evil.txt", "absolute", id="absolute"),
        pytest.param("C:\\evil.txt", "absolute", id="drive-letter"),
        pytest.param(_typed_member("link", stat.S_IFLNK), "symbolic link", id="symlink"),
        pytest.param(_typed_member("dev", stat.S_IFCHR), "device", id="char-device"),
        pytest.param(_typed_member("fifo", stat.S_IFIFO), "device", id="fifo"),
        pytest.param(MANIFEST_NAME, "reserved", id="reserved-manifest-name"),
    ],
)
def test_safe_extract_zip_refuses_hostile_member_and_writes_nothing(
    tmp_path: Path, member: zipfile.ZipInfo | str, reason: str
) -> None:
    # The harmless member comes first: refusing must happen before anything is written.
    archive = _write_zip(tmp_path / "evil.zip", [("harmless.txt", b"x"), (member, b"/etc/passwd")])
    target = tmp_path / "deep" / "out"

    with pytest.raises(PixxelUnsafeArchiveError, match=reason):
        safe_extract_zip(archive, target, max_bytes=1024, max_members=10)

    assert not target.exists()
    assert _listing(tmp_path) == ["evil.zip"]


def test_safe_extract_zip_refuses_zip_bomb_by_declared_size(tmp_path: Path) -> None:
    # 20 MB of zeros deflate to about 20 kB: the declared size, not the archive size, must count.
    archive = _write_zip(
        tmp_path / "bomb.zip", [("zeros.bin", bytes(20_000_000))], compression=zipfile.ZIP_DEFLATED
    )
    assert archive.stat().st_size < 100_000

    with pytest.raises(PixxelUnsafeArchiveError, match="more than the limit of 1000000 bytes"):
        safe_extract_zip(archive, tmp_path / "out", max_bytes=1_000_000, max_members=10)

    assert not (tmp_path / "out").exists()


def test_safe_extract_zip_refuses_too_many_members(tmp_path: Path) -> None:
    archive = _write_zip(tmp_path / "many.zip", [(f"f{index}.txt", b"x") for index in range(11)])

    with pytest.raises(PixxelUnsafeArchiveError, match="11 members: more than the limit of 10"):
        safe_extract_zip(archive, tmp_path / "out", max_bytes=1024, max_members=10)


def test_safe_extract_zip_refuses_duplicate_names(tmp_path: Path) -> None:
    archive = _write_zip(tmp_path / "dup.zip", [("a.txt", b"first"), ("A.TXT", b"second")])

    with pytest.raises(PixxelUnsafeArchiveError, match="would overwrite"):
        safe_extract_zip(archive, tmp_path / "out", max_bytes=1024, max_members=10)


def test_safe_extract_zip_removes_partial_output_when_a_member_lies_about_its_size(tmp_path: Path) -> None:
    data = bytearray(_zip_bytes([("good.txt", b"fine"), ("liar.bin", b"A" * 100)]))
    # Declare 10 uncompressed bytes for the 100-byte stored member, in both headers.
    local = data.index(b"PK\x03\x04", 1)
    struct.pack_into("<I", data, local + 22, 10)
    central = data.rindex(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 10)
    archive = tmp_path / "liar.zip"
    archive.write_bytes(bytes(data))

    with pytest.raises(PixxelUnsafeArchiveError, match="corrupt"):
        safe_extract_zip(archive, tmp_path / "out", max_bytes=1024, max_members=10)

    assert not (tmp_path / "out").exists()


def test_safe_extract_zip_refuses_a_file_that_is_not_a_zip(tmp_path: Path) -> None:
    not_zip = tmp_path / "x.zip"
    not_zip.write_bytes(b"<html>login page</html>")

    with pytest.raises(PixxelUnsafeArchiveError, match="not a readable zip"):
        safe_extract_zip(not_zip, tmp_path / "out", max_bytes=1024, max_members=10)


def test_safe_extract_zip_keeps_existing_files_when_extraction_fails(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    data = bytearray(_zip_bytes([("new.txt", b"A" * 100)]))
    struct.pack_into("<I", data, 22, 10)
    struct.pack_into("<I", data, data.rindex(b"PK\x01\x02") + 24, 10)
    archive = tmp_path / "broken.zip"
    archive.write_bytes(bytes(data))

    with pytest.raises(PixxelUnsafeArchiveError):
        safe_extract_zip(archive, target, max_bytes=1024, max_members=10)

    assert _listing(target) == ["mine.txt"]


def test_safe_extract_zip_does_not_follow_a_symlink_already_in_the_target(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (target / "sub").symlink_to(outside, target_is_directory=True)
    archive = _write_zip(tmp_path / "pkg.zip", [("sub/x.txt", b"through the link")])

    with pytest.raises(PixxelUnsafeArchiveError, match="leads outside"):
        safe_extract_zip(archive, target, max_bytes=1024, max_members=10)

    assert list(outside.iterdir()) == []


def test_safe_extract_zip_creates_missing_parent_folders(tmp_path: Path) -> None:
    archive = _write_zip(tmp_path / "pkg.zip", [("a.txt", b"x")])

    files = safe_extract_zip(archive, tmp_path / "not" / "yet" / "there", max_bytes=1024, max_members=10)

    assert files == [{"path": "a.txt", "size": 1, "sha256": _sha(b"x")}]


@pytest.mark.parametrize(
    "members",
    [
        pytest.param([("ok.tif", b"x"), ("../../escape.txt", b"owned")], id="parent-dir"),
        pytest.param([("ok.tif", b"x"), (_typed_member("link", stat.S_IFLNK), b"/etc/passwd")], id="symlink"),
        pytest.param([(f"f{index}", b"") for index in range(30)], id="too-many-members"),
    ],
)
def test_hostile_package_over_http_is_refused_leaving_nothing(
    files: _FileServer, tmp_path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]
) -> None:
    artifact = files.publish(
        single_file(
            "hostile", filename="hostile.zip", media_type="application/zip", content=_zip_bytes(members)
        )
    )
    workdir = tmp_path / "work"

    with pytest.raises(PixxelUnsafeArchiveError, match="Refusing zip"):
        download(files.url_provider(artifact), workdir / "pkg", extract=True, max_extract_members=20)

    assert _listing(tmp_path) == ["work"]


def test_zip_bomb_over_http_is_refused_leaving_nothing(files: _FileServer, tmp_path: Path) -> None:
    bomb = _zip_bytes([("zeros.bin", bytes(30_000_000))], compression=zipfile.ZIP_DEFLATED)
    artifact = files.publish(
        single_file("bomb", filename="bomb.zip", media_type="application/zip", content=bomb)
    )

    with pytest.raises(PixxelUnsafeArchiveError, match="more than the limit"):
        download(files.url_provider(artifact), tmp_path / "pkg", extract=True, max_extract_bytes=10_000_000)

    assert _listing(tmp_path) == []


def _publish_zip(files: _FileServer, name: str, content: bytes) -> Artifact:
    return files.publish(
        single_file(name, filename=f"{name}.zip", media_type="application/zip", content=content)
    )


ONE_MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        # 30 MB of zeros deflate to about 30 KB (about 1000:1), far under the default 50 GiB size limit.
        pytest.param(
            [("zeros.bin", bytes(30_000_000))],
            r"zip member 'zeros.bin'.*more than the limit of 200:1",
            id="one-member",
        ),
        # Each member is exactly the 1 MiB grace, so only the package as a whole is over 200:1.
        pytest.param(
            [(f"part-{index}.bin", bytes(ONE_MIB)) for index in range(40)],
            r"Refusing zip: it unpacks .* more than the limit of 200:1",
            id="all-members-together",
        ),
    ],
)
def test_compression_bomb_under_the_size_limit_is_refused_by_its_ratio(
    files: _FileServer, tmp_path: Path, members: list[tuple[str, bytes]], reason: str
) -> None:
    artifact = _publish_zip(
        files, f"ratio-bomb-{len(members)}", _zip_bytes(members, compression=zipfile.ZIP_DEFLATED)
    )

    with pytest.raises(PixxelUnsafeArchiveError, match=reason):
        download(files.url_provider(artifact), tmp_path / "pkg", extract=True)

    assert _listing(tmp_path) == []


def test_the_ratio_limit_is_configurable_and_small_members_are_exempt(
    files: _FileServer, tmp_path: Path
) -> None:
    small = bytes(64 * 1024)  # about 1000:1, but under the 1 MiB grace
    bomb = _zip_bytes(
        [("zeros.bin", bytes(30_000_000)), ("small.bin", small)], compression=zipfile.ZIP_DEFLATED
    )
    artifact = _publish_zip(files, "ratio-allowed", bomb)

    result = download(files.url_provider(artifact), tmp_path / "pkg", extract=True, max_extract_ratio=5_000)

    assert sorted(entry["path"] for entry in result.files) == ["small.bin", "zeros.bin"]
    assert (tmp_path / "pkg" / "small.bin").read_bytes() == small


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        pytest.param([("a", b"file"), ("a/b.txt", b"inside")], "needs a folder 'a'", id="file-then-folder"),
        pytest.param(
            [("a/b.txt", b"inside"), ("a", b"file")], "needs a folder of that name", id="folder-then-file"
        ),
        pytest.param(
            [("a/", b""), ("A", b"file")], "needs a folder of that name", id="listed-folder-then-file"
        ),
        pytest.param([("a", b"file"), ("a/", b"")], "needs a folder 'a'", id="file-then-listed-folder"),
        pytest.param(
            [("x/a", b"file"), ("X/A/b.txt", b"inside")], "needs a folder 'X/A'", id="deeper-case-folded"
        ),
    ],
)
def test_a_path_that_is_both_file_and_folder_is_refused_and_nothing_kept(
    files: _FileServer,
    tmp_path: Path,
    members: list[tuple[zipfile.ZipInfo | str, bytes]],
    reason: str,
) -> None:
    artifact = _publish_zip(files, "clash", _zip_bytes(members))

    with pytest.raises(PixxelUnsafeArchiveError, match=reason):
        download(files.url_provider(artifact), tmp_path / "pkg", extract=True)

    # No .part either: a re-run downloads afresh instead of failing on the same bytes again.
    assert _listing(tmp_path) == []
