"""Vendor pinned front-end files from the npm registry into the Python package, so an offline install
serves every page (``/docs``, ``/redoc``, the web app) without a CDN.

Each ``Asset`` names an npm package, its exact version, the registry's integrity hash of its tarball
(``npm view PACKAGE@VERSION dist.integrity``) and the files to take from it (paths inside the tarball's
``package/`` folder; its licence among them). The tarball is fetched from the registry's tarball URL, its
SHA-512 checked against the pin before anything is written, and the files are written to
``src/rendercost/api/static/vendor/PACKAGE/``. ``VERSIONS`` beside them records each package's version,
integrity and every file's SHA-256 (a unit test checks the committed files against it).

    python tools/vendor_assets.py                # fetch every asset, rewrite VERSIONS
    python tools/vendor_assets.py swagger-ui-dist  # only the named packages (VERSIONS keeps the rest)

To add a library, append an ``Asset`` to ``ASSETS`` and run the script; commit what it wrote.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import httpx

REGISTRY = "https://registry.npmjs.org"
VENDOR_DIR = Path(__file__).resolve().parent.parent / "src" / "rendercost" / "api" / "static" / "vendor"
VERSIONS_FILE = "VERSIONS"
TIMEOUT_S = 60


@dataclass(frozen=True)
class Asset:
    """One pinned npm package and the files rendercost ships from it."""

    package: str  # npm name, e.g. "swagger-ui-dist" or "@scope/name"
    version: str  # exact version
    integrity: str  # "sha512-<base64>" of the tarball, as the registry publishes it
    files: tuple[str, ...]  # paths inside the tarball's package/ folder, licence included

    @property
    def folder(self) -> str:
        """The folder under ``vendor/`` (a scoped name's ``@scope/`` becomes ``scope-``)."""
        return self.package.lstrip("@").replace("/", "-")

    @property
    def tarball_url(self) -> str:
        basename = self.package.rsplit("/", 1)[-1]
        return f"{REGISTRY}/{self.package}/-/{basename}-{self.version}.tgz"


ASSETS: tuple[Asset, ...] = (
    Asset(
        package="swagger-ui-dist",
        version="5.35.0",
        integrity="sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==",
        files=("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE", "NOTICE"),
    ),
    Asset(
        package="redoc",
        version="2.5.4",
        integrity="sha512-M6jWhG1qoBnH6TFmzJnstyCZ87HmOY/UzDm78mHiYihEdlV/YcS9ogOo1NlElnJMeLsyxHFe2yFc4sNjHTrABQ==",
        files=("bundles/redoc.standalone.js", "LICENSE"),
    ),
)


def check_integrity(data: bytes, integrity: str) -> None:
    """Raise ``ValueError`` unless ``data`` has the SHA-512 that ``integrity`` ("sha512-...") names."""
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise ValueError(f"unsupported integrity {integrity!r}: pin the registry's sha512 value")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise ValueError(f"integrity mismatch: expected sha512-{expected}, got sha512-{actual}")


def fetch(url: str) -> bytes:
    if not url.startswith(REGISTRY + "/"):
        raise ValueError(f"{url} is not on {REGISTRY}")
    response = httpx.get(url, timeout=TIMEOUT_S)
    response.raise_for_status()
    return response.content


def unpack(asset: Asset, tarball: bytes) -> dict[str, bytes]:
    """The asset's files from its (checked) tarball, by path; ``KeyError`` naming a missing one."""
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for path in asset.files:
            member = archive.getmember(f"package/{path}")
            handle = archive.extractfile(member) if member.isfile() else None
            if handle is None:
                raise KeyError(f"{asset.package}@{asset.version} has no file package/{path}")
            found[path] = handle.read()
    return found


def write_asset(asset: Asset, files: dict[str, bytes], vendor_dir: Path) -> list[str]:
    """Write the files under ``vendor_dir/asset.folder`` (old files removed); its VERSIONS lines."""
    target = vendor_dir / asset.folder
    if target.exists():
        for old in sorted(target.rglob("*"), reverse=True):
            old.unlink() if old.is_file() else old.rmdir()
    lines = [f"{asset.package} {asset.version} {asset.integrity} {asset.tarball_url}"]
    for path, data in sorted(files.items()):
        out = target / path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        lines.append(f"  {hashlib.sha256(data).hexdigest()}  {asset.folder}/{path}")
    return lines


def read_versions(vendor_dir: Path) -> dict[str, list[str]]:
    """VERSIONS as it stands: each package's block of lines, by package name."""
    blocks: dict[str, list[str]] = {}
    path = vendor_dir / VERSIONS_FILE
    current: list[str] | None = None
    for line in path.read_text().splitlines() if path.exists() else []:
        if not line or line.startswith("#"):
            continue
        if not line.startswith(" "):
            current = blocks.setdefault(line.split()[0], [])
        if current is not None:
            current.append(line)
    return blocks


def write_versions(vendor_dir: Path, blocks: dict[str, list[str]]) -> None:
    header = [
        "# Vendored front-end files: npm package, version, tarball integrity (checked), tarball URL;",
        "# then each file's SHA-256. Written by tools/vendor_assets.py; do not edit.",
    ]
    lines = header + [line for package in sorted(blocks) for line in blocks[package]]
    (vendor_dir / VERSIONS_FILE).write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", help="only these packages (default: every asset)")
    parser.add_argument("--vendor-dir", type=Path, default=VENDOR_DIR)
    args = parser.parse_args(argv)
    known = {asset.package: asset for asset in ASSETS}
    unknown = [name for name in args.packages if name not in known]
    if unknown:
        print(f"unknown package(s): {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    chosen = [known[name] for name in args.packages] if args.packages else list(ASSETS)
    args.vendor_dir.mkdir(parents=True, exist_ok=True)
    blocks = read_versions(args.vendor_dir) if args.packages else {}
    for asset in chosen:
        tarball = fetch(asset.tarball_url)
        check_integrity(tarball, asset.integrity)
        blocks[asset.package] = write_asset(asset, unpack(asset, tarball), args.vendor_dir)
        print(f"vendored {asset.package}@{asset.version} ({len(asset.files)} files)")
    write_versions(args.vendor_dir, blocks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
