"""The receipt inside the image file: what was rendered and what it cost, readable by common tools.

One JSON document (the caller's payload; ``ledger.receipts.receipt_payload`` builds the usual one:
prompt, negative prompt, seed, preset, model, size, steps, LoRAs, format and the receipt) is written
into the encoded file without touching its pixels:

- PNG: an ``iTXt`` chunk with keyword ``rendercost`` just before ``IEND`` (UTF-8, uncompressed).
  Pillow shows it as ``Image.open(f).text["rendercost"]``; exiftool as ``Rendercost``. Beside it, when
  the payload holds the render's settings, AUTOMATIC1111's ``parameters`` text (``artifacts.a1111``;
  ``tEXt``, or ``iTXt`` when it is not Latin-1), which PNG Info tools and image browsers show.
- JPEG: an XMP packet (APP1, ``http://ns.adobe.com/xap/1.0/``) after the leading APPn segments, with
  the JSON as the text of one ``rendercost:payload`` property. Pillow: ``Image.open(f).info["xmp"]``.
- WebP: the same XMP packet in the RIFF ``XMP `` chunk; a simple (``VP8 ``/``VP8L``) file is turned
  into the extended format by adding the ``VP8X`` header chunk the container spec requires for
  metadata. Pillow: ``Image.open(f).info["xmp"]``.

Chunks and segments are spliced in by hand (with ``zlib.crc32`` for PNG) rather than by re-saving with
Pillow, because Pillow would decode and re-encode the image: lossy formats would lose quality, and
even PNG bytes would change with the encoder settings. Splicing keeps the compressed image data byte
for byte. Embedding again replaces the previous rendercost and parameters chunks, and any XMP packet
in JPEG/WebP.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from typing import Any
from xml.sax.saxutils import escape, unescape

from rendercost.artifacts.a1111 import KEYWORD as PARAMETERS_KEYWORD
from rendercost.artifacts.a1111 import parameters_text
from rendercost.domain.specs import OutputFormat

KEYWORD = b"rendercost"  # PNG text keyword
XMP_NAMESPACE = "urn:rendercost:xmp:1.0/"  # XMP namespace of the rendercost:payload property

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_XMP_APP1_ID = b"http://ns.adobe.com/xap/1.0/\x00"
_JPEG_MAX_SEGMENT = 0xFFFF - 2  # a segment's payload, excluding its 2-byte length
_XMP_RE = re.compile(r"<rendercost:payload>(.*?)</rendercost:payload>", re.DOTALL)
_VP8X_XMP_FLAG = 0x04
_VP8X_ALPHA_FLAG = 0x10


def embed_receipt(data: bytes, media_type: str, payload: dict[str, Any]) -> bytes:
    """``data`` with ``payload`` written in as JSON; the image data itself is unchanged.

    Raises ``ValueError`` for a media type other than PNG/JPEG/WebP or a file that is not one.
    """
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if media_type == OutputFormat.PNG.media_type:
        return _png_embed(data, text, parameters_text(payload))
    if media_type == OutputFormat.JPEG.media_type:
        return _jpeg_embed(data, _xmp_packet(text))
    if media_type == OutputFormat.WEBP.media_type:
        return _webp_embed(data, _xmp_packet(text))
    raise ValueError(f"cannot embed a receipt in {media_type!r}")


def read_receipt(data: bytes, media_type: str) -> dict[str, Any] | None:
    """The payload ``embed_receipt`` wrote, or None when the file holds none."""
    if media_type == OutputFormat.PNG.media_type:
        text = _png_read(data)
    elif media_type == OutputFormat.JPEG.media_type:
        text = _xmp_payload(_jpeg_read_xmp(data))
    elif media_type == OutputFormat.WEBP.media_type:
        text = _xmp_payload(_webp_read_xmp(data))
    else:
        raise ValueError(f"cannot read a receipt from {media_type!r}")
    if text is None:
        return None
    payload = json.loads(text)
    return payload if isinstance(payload, dict) else None


# --- PNG -------------------------------------------------------------------------------------------


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """``(type, body)`` of every chunk, checking the layout (not the CRCs)."""
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    chunks: list[tuple[bytes, bytes]] = []
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if pos + 12 + length > len(data):
            raise ValueError("truncated PNG chunk")
        chunks.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
        if kind == b"IEND":
            return chunks
    raise ValueError("PNG file has no IEND chunk")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _is_text(kind: bytes, body: bytes, keyword: bytes) -> bool:
    return kind in (b"iTXt", b"tEXt", b"zTXt") and body.split(b"\x00", 1)[0] == keyword


def _is_ours(kind: bytes, body: bytes) -> bool:
    return _is_text(kind, body, KEYWORD)


def _text_chunk(keyword: bytes, text: str) -> tuple[bytes, bytes]:
    """``tEXt`` when ``text`` is Latin-1 (what A1111's readers expect), else ``iTXt`` (UTF-8)."""
    try:
        return b"tEXt", keyword + b"\x00" + text.encode("latin-1")
    except UnicodeEncodeError:
        return b"iTXt", keyword + b"\x00\x00\x00\x00\x00" + text.encode("utf-8")


def _png_embed(data: bytes, text: str, parameters: str | None = None) -> bytes:
    drop = (KEYWORD, PARAMETERS_KEYWORD.encode())
    chunks = [(k, b) for k, b in _png_chunks(data) if not any(_is_text(k, b, word) for word in drop)]
    if parameters is not None:
        chunks.insert(len(chunks) - 1, _text_chunk(PARAMETERS_KEYWORD.encode(), parameters))
    # iTXt: keyword, NUL, compression flag 0, method 0, empty language tag NUL, empty translation NUL.
    itxt = KEYWORD + b"\x00\x00\x00\x00\x00" + text.encode("utf-8")
    chunks.insert(len(chunks) - 1, (b"iTXt", itxt))
    return _PNG_SIGNATURE + b"".join(_png_chunk(kind, body) for kind, body in chunks)


def _png_read(data: bytes) -> str | None:
    for kind, body in _png_chunks(data):
        if not _is_ours(kind, body):
            continue
        rest = body[len(KEYWORD) + 1 :]
        if kind == b"tEXt":
            return rest.decode("latin-1")
        if kind == b"zTXt":
            return zlib.decompress(rest[1:]).decode("latin-1")
        compressed, rest = rest[0], rest[2:]
        _language, _translated, text = rest.split(b"\x00", 2)
        return (zlib.decompress(text) if compressed else text).decode("utf-8")
    return None


# --- XMP (JPEG and WebP) ---------------------------------------------------------------------------


def _xmp_packet(text: str) -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:rendercost="{XMP_NAMESPACE}">'
        f"<rendercost:payload>{escape(text)}</rendercost:payload>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def _xmp_payload(packet: bytes | None) -> str | None:
    if packet is None:
        return None
    match = _XMP_RE.search(packet.decode("utf-8", errors="replace"))
    return unescape(match.group(1)) if match else None


# --- JPEG ------------------------------------------------------------------------------------------


def _jpeg_segments(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Marker segments between SOI and SOS as ``(marker, payload)``, and the rest from SOS on."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG file")
    segments: list[tuple[int, bytes]] = []
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("malformed JPEG segment")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            return segments, data[pos:]
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        segments.append((marker, data[pos + 4 : pos + 2 + length]))
        pos += 2 + length
    raise ValueError("JPEG file has no image data")


def _jpeg_embed(data: bytes, packet: bytes) -> bytes:
    body = _XMP_APP1_ID + packet
    if len(body) > _JPEG_MAX_SEGMENT:
        raise ValueError(f"receipt too large for a JPEG segment ({len(body)} bytes)")
    segments, rest = _jpeg_segments(data)
    segments = [(m, p) for m, p in segments if not (m == 0xE1 and p.startswith(_XMP_APP1_ID))]
    at = 0
    while at < len(segments) and 0xE0 <= segments[at][0] <= 0xEF:  # after JFIF/Exif/other APPn
        at += 1
    segments.insert(at, (0xE1, body))
    encoded = b"".join(bytes((0xFF, m)) + struct.pack(">H", len(p) + 2) + p for m, p in segments)
    return b"\xff\xd8" + encoded + rest


def _jpeg_read_xmp(data: bytes) -> bytes | None:
    segments, _rest = _jpeg_segments(data)
    for marker, payload in segments:
        if marker == 0xE1 and payload.startswith(_XMP_APP1_ID):
            return payload[len(_XMP_APP1_ID) :]
    return None


# --- WebP ------------------------------------------------------------------------------------------


def _webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP file")
    chunks: list[tuple[bytes, bytes]] = []
    pos = 12
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        if pos + 8 + size > len(data):
            raise ValueError("truncated WebP chunk")
        chunks.append((kind, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return chunks


def _webp_chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")


def _webp_canvas(kind: bytes, body: bytes) -> tuple[int, int, bool]:
    """Width, height and alpha of a simple-format WebP bitstream."""
    if kind == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", body[6:10])
        return width & 0x3FFF, height & 0x3FFF, False
    if kind == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        (bits,) = struct.unpack("<I", body[1:5])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool(bits >> 28 & 1)
    raise ValueError("unsupported WebP bitstream")


def _webp_embed(data: bytes, packet: bytes) -> bytes:
    chunks = [(k, b) for k, b in _webp_chunks(data) if k != b"XMP "]
    if not chunks:
        raise ValueError("WebP file has no image chunk")
    if chunks[0][0] == b"VP8X":
        header = bytearray(chunks[0][1])
        header[0] |= _VP8X_XMP_FLAG
        chunks[0] = (b"VP8X", bytes(header))
    else:
        width, height, alpha = _webp_canvas(*chunks[0])
        flags = _VP8X_XMP_FLAG | (_VP8X_ALPHA_FLAG if alpha else 0)
        canvas = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        chunks.insert(0, (b"VP8X", bytes((flags, 0, 0, 0)) + canvas))
    chunks.append((b"XMP ", packet))
    body = b"WEBP" + b"".join(_webp_chunk(kind, chunk) for kind, chunk in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _webp_read_xmp(data: bytes) -> bytes | None:
    for kind, body in _webp_chunks(data):
        if kind == b"XMP ":
            return body
    return None
