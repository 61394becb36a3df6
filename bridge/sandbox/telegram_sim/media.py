"""Tiny, valid media files made without Pillow, and image sniffing.

The sandbox has no image library, yet injected photos must be real images (the bridge may
forward them to Udesk, browsers must render them) and bot-sent photos must be rejected the way
Telegram rejects non-images. A solid grey baseline JPEG can be written by hand: with every DCT
coefficient zero, each 8x8 block is two Huffman-coded zero bits.
"""

from __future__ import annotations

import struct
import zlib

PHOTO_SIDES = (90, 320, 800, 1280)


def make_jpeg(width: int = 640, height: int = 480, label: str = "") -> bytes:
    """A valid grey baseline JPEG of the given size; ``label`` goes into a COM segment so
    that two generated images never have identical bytes."""
    width = max(1, min(width, 65535))
    height = max(1, min(height, 65535))

    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload

    parts = [b"\xff\xd8"]
    parts.append(segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"))
    if label:
        parts.append(segment(0xFE, label.encode("utf-8")[:60000]))
    parts.append(segment(0xDB, b"\x00" + b"\x01" * 64))
    parts.append(segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"))
    # One Huffman code ("0", length 1) in each table: DC category 0 and AC end-of-block.
    one_code = bytes([1] + [0] * 15) + b"\x00"
    parts.append(segment(0xC4, b"\x00" + one_code))
    parts.append(segment(0xC4, b"\x10" + one_code))
    parts.append(segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"))
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    bits = 2 * blocks
    data = b"\x00" * (bits // 8)
    if bits % 8:
        data += bytes([0xFF >> (bits % 8)])  # pad the last byte with 1-bits, as required
    parts.append(data)
    parts.append(b"\xff\xd9")
    return b"".join(parts)


def make_png(
    width: int = 64, height: int = 64, rgb: tuple[int, int, int] = (40, 120, 200)
) -> bytes:
    """A valid solid-colour RGB PNG."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    row = b"\x00" + bytes(rgb) * width
    raw = row * height
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def image_info(data: bytes) -> tuple[str, int, int] | None:
    """(mime type, width, height) for JPEG/PNG/GIF/WebP/BMP bytes, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return "image/png", width, height
    if data.startswith(b"GIF8") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return "image/gif", width, height
    if data.startswith(b"BM") and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return "image/bmp", abs(width), abs(height)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", 512, 512
    if data.startswith(b"\xff\xd8"):
        return _jpeg_info(data)
    return None


def _jpeg_info(data: bytes) -> tuple[str, int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        is_sof = 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)
        if is_sof and pos + 9 <= len(data):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return "image/jpeg", width, height
        if marker == 0xDA:
            return None
        pos += 2 + length
    return None


def scaled(width: int, height: int, side: int) -> tuple[int, int]:
    """Dimensions fitted into a side x side box, keeping the aspect ratio."""
    biggest = max(width, height, 1)
    if biggest <= side:
        return width, height
    factor = side / biggest
    return max(1, round(width * factor)), max(1, round(height * factor))


# Placeholder payloads for non-image media: recognisable magic numbers, not playable files.
PLACEHOLDERS: dict[str, tuple[bytes, str, str]] = {
    "voice": (b"OggS\x00\x02" + b"\x00" * 58 + b"OpusHead", "audio/ogg", "voice.oga"),
    "audio": (
        b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 16,
        "audio/mpeg",
        "audio.mp3",
    ),
    "video": (
        b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 32,
        "video/mp4",
        "video.mp4",
    ),
    "video_note": (
        b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 16,
        "video/mp4",
        "video_note.mp4",
    ),
    "animation": (
        b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 8,
        "video/mp4",
        "animation.mp4",
    ),
    "sticker": (
        b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00" + b"\x00" * 24,
        "image/webp",
        "sticker.webp",
    ),
    "document": (
        b"%PDF-1.4\n%sim\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
        "application/pdf",
        "document.pdf",
    ),
}
