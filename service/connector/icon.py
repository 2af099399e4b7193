"""``icon.png``: the brand-coloured 230x230 icon, drawn by code (no image library, no binary in the source)."""

from __future__ import annotations

import math
import struct
import zlib
from functools import lru_cache

from service.connector.spec import BRAND_COLOR, ICON_SIZE, ConnectorError


def _png(width: int, height: int, rows: list[bytes]) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 on every scanline
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no alpha: always opaque
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """Minimal decoder for the PNGs :func:`build_icon` writes: ``(width, height, colour_type, rgb_pixels)``."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ConnectorError("not a PNG file")
    pos, idat = 8, b""
    width = height = 0
    colour_type = -1
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if tag == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour_type != 2 or interlace:
                raise ConnectorError("only 8-bit RGB, non-interlaced PNGs are supported")
        elif tag == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * 3 + 1
    rows = [raw[i * stride:(i + 1) * stride] for i in range(height)]
    if any(r[0] != 0 for r in rows):
        raise ConnectorError("only unfiltered scanlines are supported")
    return width, height, colour_type, b"".join(r[1:] for r in rows)


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


@lru_cache(maxsize=2)
def build_icon(color: str = BRAND_COLOR, size: int = ICON_SIZE) -> bytes:
    """A 230x230 opaque PNG: brand-colour background, a white ring around a white "play" triangle
    (start an action). Pure Python (zlib + struct), anti-aliased by 4x4 supersampling on the edges."""
    bg, fg = _rgb(color), (255, 255, 255)
    c = size / 2.0
    r_out, r_in = 0.40 * size, 0.34 * size
    tri = ((c - 0.10 * size, c - 0.17 * size), (c - 0.10 * size, c + 0.17 * size), (c + 0.19 * size, c))
    edges = []  # (nx, ny, offset): n.p + offset >= 0 inside; normals unit length
    for (x1, y1), (x2, y2) in zip(tri, tri[1:] + tri[:1], strict=True):
        nx, ny = y1 - y2, x2 - x1
        length = math.hypot(nx, ny)
        nx, ny = nx / length, ny / length
        cx, cy = sum(p[0] for p in tri) / 3, sum(p[1] for p in tri) / 3
        off = -(nx * x1 + ny * y1)
        if nx * cx + ny * cy + off < 0:
            nx, ny, off = -nx, -ny, -off
        edges.append((nx, ny, off))

    def inside(x: float, y: float) -> bool:
        d = math.hypot(x - c, y - c)
        if r_in <= d <= r_out:
            return True
        return all(nx * x + ny * y + off >= 0 for nx, ny, off in edges)

    def near_edge(x: float, y: float) -> bool:
        d = math.hypot(x - c, y - c)
        if abs(d - r_out) < 1 or abs(d - r_in) < 1:
            return True
        dists = [nx * x + ny * y + off for nx, ny, off in edges]
        return min(dists) > -1 and any(abs(v) < 1 for v in dists)

    samples = [(i + 0.5) / 4 for i in range(4)]
    rows: list[bytes] = []
    for y in range((size + 1) // 2):  # the glyph is symmetric about the horizontal axis: mirror the top half
        row = bytearray()
        for x in range(size):
            px, py = x + 0.5, y + 0.5
            if near_edge(px, py):
                cover = sum(inside(x + sx, y + sy) for sx in samples for sy in samples) / 16
            else:
                cover = 1.0 if inside(px, py) else 0.0
            row += bytes(round(b + (f - b) * cover) for b, f in zip(bg, fg, strict=True))
        rows.append(bytes(row))
    rows += rows[: size // 2][::-1]
    return _png(size, size, rows)
