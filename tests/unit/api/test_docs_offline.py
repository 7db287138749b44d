"""/docs and /redoc load only files the server itself serves (no CDN, no web fonts); the vendored files
are the ones VERSIONS pins, with their licences; the vendoring script checks integrity before writing."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import tarfile
from pathlib import Path

import pytest
from tools import vendor_assets

from rendercost.api.docs_offline import STATIC_DIR
from tests.unit.api.conftest import Api

URL_RE = re.compile(r"""https?://[^\s"'<>)]+""")
REF_RE = re.compile(r"""(?:href|src|spec-url)="([^"]+)"|url: '([^']+)'""")
VENDOR = STATIC_DIR / "vendor"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_only_our_own_files(api: Api, page: str) -> None:
    response = api.client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert URL_RE.findall(html) == []  # no host at all: every reference is a path on this server
    refs = [a or b for a, b in REF_RE.findall(html)]
    assert any(ref.endswith(".js") for ref in refs) and "/openapi.json" in refs
    for ref in refs:
        assert ref.startswith("/"), ref
        fetched = api.client.get(ref)
        assert fetched.status_code == 200, ref
        assert len(fetched.content) > 0


def test_fastapis_cdn_pages_are_not_registered(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    assert "/docs" not in schema["paths"] and "/redoc" not in schema["paths"]
    assert api.client.get("/docs/oauth2-redirect").status_code == 404


def versions() -> dict[str, tuple[str, str, list[tuple[str, str]]]]:
    """VERSIONS: package -> (version, integrity, [(sha256, path)])."""
    found: dict[str, tuple[str, str, list[tuple[str, str]]]] = {}
    current: list[tuple[str, str]] = []
    for line in (VENDOR / "VERSIONS").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith(" "):
            digest, path = line.split()
            current.append((digest, path))
        else:
            package, version, integrity, _url = line.split()
            current = []
            found[package] = (version, integrity, current)
    return found


def test_vendored_files_match_versions_and_the_pins() -> None:
    pinned = {asset.package: asset for asset in vendor_assets.ASSETS}
    recorded = versions()
    assert set(recorded) == set(pinned)
    for package, (version, integrity, files) in recorded.items():
        asset = pinned[package]
        assert (version, integrity) == (asset.version, asset.integrity)
        assert sorted(path for _, path in files) == sorted(f"{asset.folder}/{f}" for f in asset.files)
        assert any(Path(path).name.startswith("LICENSE") for _, path in files), package
        for digest, path in files:
            assert hashlib.sha256((VENDOR / path).read_bytes()).hexdigest() == digest, path


def tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def test_the_script_refuses_a_tarball_that_is_not_the_pinned_one() -> None:
    data = tarball({"a.js": b"1"})
    vendor_assets.check_integrity(data, integrity_of(data))
    with pytest.raises(ValueError, match="integrity mismatch"):
        vendor_assets.check_integrity(data + b"x", integrity_of(data))
    with pytest.raises(ValueError, match="sha512"):
        vendor_assets.check_integrity(data, "sha1-abc")
    with pytest.raises(ValueError, match="registry"):
        vendor_assets.fetch("https://cdn.example.com/a.tgz")


def test_the_script_writes_the_files_and_their_hashes(tmp_path: Path) -> None:
    files = {"dist/lib.js": b"console.log(1)", "LICENSE": b"MIT"}
    data = tarball(files)
    asset = vendor_assets.Asset("@scope/lib", "1.2.3", integrity_of(data), ("dist/lib.js", "LICENSE"))
    assert asset.tarball_url == "https://registry.npmjs.org/@scope/lib/-/lib-1.2.3.tgz"
    lines = vendor_assets.write_asset(asset, vendor_assets.unpack(asset, data), tmp_path)
    vendor_assets.write_versions(tmp_path, {asset.package: lines})
    assert (tmp_path / "scope-lib" / "dist" / "lib.js").read_bytes() == files["dist/lib.js"]
    assert vendor_assets.read_versions(tmp_path)[asset.package] == lines
    missing = vendor_assets.Asset("lib", "1.0.0", integrity_of(data), ("nope.js",))
    with pytest.raises(KeyError):
        vendor_assets.unpack(missing, data)
    assert vendor_assets.main(["no-such-package", "--vendor-dir", str(tmp_path)]) == 2
