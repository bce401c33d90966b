"""Strict reading of idx files (LeCun's format for MNIST), plain or gzip-compressed.

An idx file is a 4-byte magic number (two zero bytes, a type code — 0x08 for unsigned bytes — and the number of
dimensions), one big-endian 32-bit size per dimension, then the values in row-major order. Every way a file can
be malformed (unreadable gzip, short header, wrong magic number, wrong number of bytes) raises a
:class:`~harness.datacache.DataFileError` naming the file and what was expected.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from harness.datacache import DataFileError

GZIP_MAGIC = b"\x1f\x8b"
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # unsigned bytes in 3 and 1 dimensions


def read_bytes(path: Path) -> tuple[bytes, bool]:
    """The file's content, decompressed when it is gzip (by its first bytes, whatever its name), and whether it was."""
    data = path.read_bytes()
    if data[:2] != GZIP_MAGIC:
        return data, False
    try:
        return gzip.decompress(data), True
    except (EOFError, OSError, zlib.error) as exc:
        raise DataFileError(path, f"truncated or corrupt gzip stream ({type(exc).__name__}: {exc})") from exc


def read_idx(path: Path, magic: int, what: str) -> np.ndarray:
    """The ``uint8`` array of an idx file whose magic number must be ``magic`` (2051 images, 2049 labels)."""
    data, compressed = read_bytes(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < 4:
        raise DataFileError(path, f"{len(data)} bytes: too short for an idx header (expected {what}, magic "
                                  f"number {magic})")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DataFileError(path, f"magic number {found}, expected {magic} ({what}: unsigned bytes in {ndim} "
                                  f"dimension{'s' if ndim > 1 else ''})")
    if len(data) < header:
        raise DataFileError(path, f"{len(data)} bytes: header truncated (expected {header} bytes of magic number "
                                  f"and {ndim} sizes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "trailing bytes"
        raise DataFileError(path, f"{len(data)} bytes{' (decompressed)' if compressed else ''}, expected {expected} "
                                  f"for {what} of shape {shape} ({problem})")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
