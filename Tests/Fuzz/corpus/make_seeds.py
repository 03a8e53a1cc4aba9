#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (Tests/Fuzz/corpus/png, .../safetensors): small valid
files of every kind the readers handle and a few corrupt ones. Standard library only; run from anywhere.
The seeds are committed; rerun this only to change them."""
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def write(kind, name, data):
    with open(os.path.join(HERE, kind, name), "wb") as f:
        f.write(data)


# ---- PNG --------------------------------------------------------------------------------------

def chunk(kind, data):
    body = kind.encode() + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def png(width, height, depth, color, rows, interlaced=False, extra=b"", level=9):
    """rows: the filtered scanlines (each with its filter byte) in the order the file stores them."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 1 if interlaced else 0)
    idat = zlib.compress(b"".join(rows), level)
    return b"\x89PNG\r\n\x1a\n" + chunk("IHDR", ihdr) + extra + chunk("IDAT", idat) + chunk("IEND", b"")


def packed(samples, depth):
    """Samples of `depth` bits packed MSB-first into bytes."""
    out, acc, bits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        bits += depth
        while bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if bits:
        out.append((acc << (8 - bits)) & 0xFF)
    return bytes(out)


def scanlines(width, height, channels, depth, filter_type=0):
    rows = []
    for y in range(height):
        samples = [(x * 7 + y * 13 + c * 5) % (1 << depth) for x in range(width) for c in range(channels)]
        data = packed(samples, depth) if depth < 8 else (
            bytes(samples) if depth == 8 else b"".join(struct.pack(">H", s * 257 % 65536) for s in samples))
        rows.append(bytes([filter_type]) + data)
    return rows


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def interlaced_rows(width, height, channels, depth):
    rows = []
    for x0, y0, dx, dy in ADAM7:
        w = len(range(x0, width, dx))
        for y in range(y0, height, dy):
            if w:
                samples = [(x * 3 + y * 11 + c) % (1 << depth) for x in range(x0, width, dx) for c in range(channels)]
                rows.append(b"\x00" + (packed(samples, depth) if depth < 8 else bytes(samples)))
    return rows


def png_seeds():
    seeds = {
        "grey1.png": png(9, 3, 1, 0, scanlines(9, 3, 1, 1)),
        "grey2.png": png(5, 2, 2, 0, scanlines(5, 2, 1, 2)),
        "grey4.png": png(3, 3, 4, 0, scanlines(3, 3, 1, 4)),
        "grey8_sub_filter.png": png(4, 4, 8, 0, scanlines(4, 4, 1, 8, filter_type=1)),
        "grey16.png": png(3, 2, 16, 0, scanlines(3, 2, 1, 16)),
        "rgb8_paeth.png": png(4, 3, 8, 2, scanlines(4, 3, 3, 8, filter_type=4)),
        "rgb16.png": png(2, 2, 16, 2, scanlines(2, 2, 3, 16)),
        "grey_alpha8.png": png(3, 2, 8, 4, scanlines(3, 2, 2, 8)),
        "rgba8_average.png": png(3, 3, 8, 6, scanlines(3, 3, 4, 8, filter_type=3)),
        "palette4_trns.png": png(5, 2, 4, 3, scanlines(5, 2, 1, 4),
                                 extra=chunk("PLTE", bytes(range(48))) + chunk("tRNS", b"\x00\x80")),
        "grey8_interlaced.png": png(10, 9, 8, 0, interlaced_rows(10, 9, 1, 8), interlaced=True),
        "rgb8_gamma_text.png": png(2, 2, 8, 2, scanlines(2, 2, 3, 8),
                                   extra=chunk("gAMA", struct.pack(">I", 45455)) + chunk("tEXt", b"Comment\x00seed")),
    }
    good = seeds["rgb8_paeth.png"]
    seeds["truncated.png"] = good[: len(good) - 20]
    bad_crc = bytearray(good)
    bad_crc[20] ^= 0x01  # a byte of IHDR's width: its CRC no longer matches
    seeds["bad_ihdr_crc.png"] = bytes(bad_crc)
    seeds["short_rows.png"] = png(4, 4, 8, 0, scanlines(4, 2, 1, 8))
    seeds["bad_filter.png"] = png(2, 2, 8, 0, [b"\x07\x00\x00", b"\x00\x01\x02"])
    seeds["signature_only.png"] = good[:8]
    # A tEXt chunk declaring 2 GB in a 119-byte file: libpng allocated and zeroed it all (fixed in
    # png_support.c); the fuzz runs' -malloc_limit_mb keeps it fixed.
    ihdr_end = 8 + 25
    seeds["huge_text_chunk.png"] = good[:ihdr_end] + struct.pack(">I", 1996488716) + b"tEXtComment\x00seed" + good[ihdr_end:]
    for name, data in seeds.items():
        write("png", name, data)


GOLDEN = os.path.join(HERE, "..", "..", "Fixtures", "golden")


# ---- safetensors -----------------------------------------------------------------------------

def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 & -(c & 1))
    return c ^ 0xFFFFFFFF


def safetensors(entries, data, metadata=None, checksums=False, pad=True):
    """entries: name -> (dtype, shape, [begin, end]); data: the data section."""
    header = {name: {"dtype": d, "shape": s, "data_offsets": o} for name, (d, s, o) in entries.items()}
    meta = dict(metadata or {})
    if checksums:
        meta["neuron.crc32c"] = json.dumps(
            {name: "%08x" % crc32c(data[o[0]:o[1]]) for name, (_, _, o) in sorted(entries.items())},
            separators=(",", ":"))
    if meta:
        header["__metadata__"] = meta
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds():
    f32 = struct.pack("<6f", 1, -2.5, 3.25, 0, -0.0, 65504)
    i64 = struct.pack("<2q", -1, 2**62)
    mixed = {"w": ("F32", [2, 3], [0, 24]), "n": ("I64", [2], [24, 40]), "e": ("F32", [0, 4], [40, 40])}
    seeds = {
        "neuron_checksums.safetensors": safetensors(mixed, f32 + i64, {"format": "pt"}, checksums=True),
        "no_checksums.safetensors": safetensors(mixed, f32 + i64, {"format": "pt", "torch_version": "2.5"}),
        "every_dtype.safetensors": safetensors({
            "h": ("F16", [2], [0, 4]), "b": ("BF16", [2], [4, 8]), "d": ("F64", [1], [8, 16]),
            "i8": ("I8", [2], [16, 18]), "u8": ("U8", [2], [18, 20]), "i16": ("I16", [1], [20, 22]),
            "u16": ("U16", [1], [22, 24]), "i32": ("I32", [1], [24, 28]), "u32": ("U32", [1], [28, 32]),
            "t": ("BOOL", [3], [32, 35]), "s": ("F32", [], [35, 39]),
        }, bytes(range(39))),
        "empty.safetensors": safetensors({}, b""),
        "unpadded_escapes.safetensors": safetensors({"a\u00e9\"\\\n\ud83d\ude00": ("F32", [1], [0, 4])},
                                                    f32[:4], {"note": "tab\tquote\""}, pad=False),
        "hole.safetensors": safetensors({"a": ("F32", [1], [0, 4]), "b": ("F32", [1], [8, 12])}, f32[:12]),
        "trailing.safetensors": safetensors({"a": ("F32", [2], [0, 8])}, f32[:9]),
        "overlap.safetensors": safetensors({"a": ("F32", [2], [0, 8]), "b": ("F32", [2], [4, 12])}, f32[:12]),
        "huge_shape.safetensors": safetensors({"z": ("F32", [0, 4611686018427387904, 4], [0, 0])}, b""),
    }
    # Two files written by PyTorch's safetensors, from the golden fixtures.
    for golden, name in [("sequential_state_dict", "pytorch_state_dict"), ("dtypes", "pytorch_dtypes")]:
        with open(os.path.join(GOLDEN, golden + ".safetensors"), "rb") as f:
            seeds[name + ".safetensors"] = f.read()
    good = seeds["neuron_checksums.safetensors"]
    seeds["bad_checksum.safetensors"] = good[:-1] + bytes([good[-1] ^ 0x01])
    for name, data in seeds.items():
        write("safetensors", name, data)


if __name__ == "__main__":
    os.makedirs(os.path.join(HERE, "png"), exist_ok=True)
    os.makedirs(os.path.join(HERE, "safetensors"), exist_ok=True)
    png_seeds()
    safetensors_seeds()
