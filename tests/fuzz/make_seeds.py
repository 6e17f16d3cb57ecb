#!/usr/bin/env python3
"""Writes the fuzz target's hand-made seeds (tests/fuzz/seeds/) that random mutation would
rarely find: frame headers with correct header CRCs. Run from the repository root."""
import struct

MAGIC = bytes([0xD1, 0x51, 0x42, 0x46])


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def header(length: int, payload_crc: int) -> bytes:
    h = MAGIC + bytes([1, 0, 0, 0]) + struct.pack("<II", length, payload_crc)
    return h + struct.pack("<I", crc32c(h))


def nested_attack(headers: int, tail: int, after: int) -> bytes:
    """One header claiming 60 KiB (under the target's 64 KiB limit), then `headers` headers
    whose payloads all end `tail` bytes after the last one, then `after` more bytes: quadratic
    for a reader that re-checks every complete candidate on each call."""
    out = bytearray(header(60 * 1024, 0x12345678))
    common_end = 20 * (headers + 1) + tail
    for _ in range(headers):
        out += header(common_end - len(out) - 20, 0x0BADC0DE)
    out += b"\xab" * (tail + after)
    return bytes(out)


if __name__ == "__main__":
    with open("tests/fuzz/seeds/nested-headers", "wb") as f:
        f.write(nested_attack(200, 1024, 2048))
