"""Turn latent codes into bytes and back (notebook 07), and measure classical image codecs through Pillow.

A code of ``latent_dim`` numbers is quantized to ``bits`` per number with ranges fitted on the
training set, bit-packed, and framed by one header byte and one CRC-8 byte:

    [header: format version << 4 | (bits - 1)] [payload: ceil(latent_dim * bits / 8) bytes] [CRC-8]

The CRC-8 (polynomial x^8 + x^2 + x + 1, ``0x07``) of the header and payload catches every error confined
to one byte and every odd number of flipped bits; other damage passes it about once in 256 tries.

Classical files are measured two ways: one file per digit, split by ``file_parts`` into the container
(signatures, headers, tables, framing) and the payload (the coded pixels), and one mosaic file holding
all the digits, whose size divided by the number of digits shares the container among them.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass

import numpy as np

from utils import checks, config
from utils.checks import IMAGE_SHAPE

FORMAT_VERSION = 2  # version 1 used the low byte of a CRC-32, which misses some one-byte errors
FRAMING_BYTES = 2  # the header byte and the checksum byte
CRC8_POLYNOMIAL = 0x07


def _crc8_table() -> np.ndarray:
    """The CRC-8 of every byte value, for a byte-at-a-time CRC."""
    table = np.arange(256, dtype=np.uint16)
    for _ in range(8):
        table = np.where(table & 0x80, (table << 1) ^ CRC8_POLYNOMIAL, table << 1) & 0xFF
    return table.astype(np.uint8)


_CRC8_TABLE = _crc8_table()


def crc8(rows: np.ndarray) -> np.ndarray:
    """The CRC-8 (polynomial 0x07, start value 0) of each row of a ``(n, length)`` uint8 array."""
    rows = np.asarray(rows, dtype=np.uint8)
    if rows.ndim != 2:
        raise ValueError(f"rows must be a 2-D array of bytes, one message per row; got shape {rows.shape}.")
    crc = np.zeros(len(rows), dtype=np.uint8)
    for column in rows.T:
        crc = _CRC8_TABLE[crc ^ column]
    return crc


class CodecError(ValueError):
    """Raised for a byte string that is not a valid encoding for this codec."""


def _as_rows(encoded: list[bytes], length: int) -> np.ndarray:
    """Byte strings of one length as the rows of a uint8 array."""
    return np.frombuffer(b"".join(bytes(blob) for blob in encoded), dtype=np.uint8).reshape(-1, length)


def _check_strings(encoded) -> list:
    """``encoded`` as a list, if it is a list or tuple (of byte strings, checked one by one later)."""
    if not isinstance(encoded, list | tuple):
        raise TypeError(f"encoded must be a list of byte strings, got {type(encoded).__name__}.")
    return list(encoded)


@dataclass(frozen=True)
class LatentQuantizer:
    """Uniform per-dimension quantization of latent codes, with ranges fitted on training codes."""

    bits: int
    low: tuple[float, ...]
    high: tuple[float, ...]

    def __post_init__(self) -> None:
        checks.integer(self.bits, "bits", 1, 8)
        low = checks.points(self.low, "low")
        high = checks.points(self.high, "high")
        if low.shape != high.shape:
            raise ValueError(f"low and high must be equally long, got {len(low)} and {len(high)} numbers.")
        above = np.flatnonzero(high <= low)
        if above.size:
            first = above[0]
            raise ValueError(
                f"high must be above low in every dimension; dimension {first} has low {low[first]:g} "
                f"and high {high[first]:g}."
            )

    @classmethod
    def fit(cls, training_codes: np.ndarray, bits: int, coverage: float = 0.999) -> LatentQuantizer:
        """Fit each dimension's range to the central ``coverage`` share of the training codes."""
        coverage = checks.number(coverage, "coverage (the share of codes inside the range)", 0, 1, low_open=True)
        codes = checks.points(training_codes, "training_codes", "any", rows=2)
        tail = (1 - coverage) / 2
        low, high = np.quantile(codes, tail, axis=0), np.quantile(codes, 1 - tail, axis=0)
        high = np.where(high > low, high, low + 1e-6)
        return cls(bits, tuple(float(v) for v in low), tuple(float(v) for v in high))

    @property
    def latent_dim(self) -> int:
        return len(self.low)

    @property
    def levels(self) -> int:
        return 2**self.bits

    @property
    def header(self) -> int:
        """The first byte of every encoded code: the format version and the bit depth."""
        return FORMAT_VERSION << 4 | (self.bits - 1)

    @property
    def payload_bytes(self) -> int:
        """Bytes of the packed numbers of one code, without the header and checksum."""
        return (self.latent_dim * self.bits + 7) // 8

    @property
    def bytes_per_code(self) -> int:
        """Bytes of one encoded code: header, packed payload and checksum."""
        return FRAMING_BYTES + self.payload_bytes

    def quantize(self, codes: np.ndarray) -> np.ndarray:
        """Map each number to the index 0..2**bits-1 of its nearest level (values outside the range are clipped)."""
        codes = checks.points(codes, "codes", self.latent_dim)
        low, high = np.array(self.low), np.array(self.high)
        steps = np.round((codes - low) / (high - low) * (self.levels - 1))
        return np.clip(steps, 0, self.levels - 1).astype(np.uint8)

    def dequantize(self, levels: np.ndarray) -> np.ndarray:
        """Map indices back to their levels, ``2**bits`` evenly spaced from ``low`` to ``high`` (both included), as float32."""
        low, high = np.array(self.low), np.array(self.high)
        return (low + np.asarray(levels, dtype=np.float64) / (self.levels - 1) * (high - low)).astype(np.float32)

    def encode(self, codes: np.ndarray) -> list[bytes]:
        """Encode a batch of codes ``(n, latent_dim)`` into one byte string per code."""
        levels = self.quantize(codes)
        bits = np.unpackbits(levels[:, :, None], axis=2)[:, :, 8 - self.bits :].reshape(len(levels), -1)
        payloads = np.packbits(bits, axis=1)
        bodies = np.concatenate([np.full((len(payloads), 1), self.header, np.uint8), payloads], axis=1)
        framed = np.concatenate([bodies, crc8(bodies)[:, None]], axis=1)
        return [row.tobytes() for row in framed]

    def accepts(self, encoded: list[bytes]) -> np.ndarray:
        """For each byte string, whether it passes the checks: type, length, header and checksum."""
        encoded = _check_strings(encoded)
        sized = np.array(
            [isinstance(blob, bytes | bytearray) and len(blob) == self.bytes_per_code for blob in encoded], dtype=bool
        )
        passed = sized.copy()
        if sized.any():
            rows = _as_rows([blob for blob, ok in zip(encoded, sized, strict=True) if ok], self.bytes_per_code)
            passed[sized] = (rows[:, 0] == self.header) & (crc8(rows[:, :-1]) == rows[:, -1])
        return passed

    def _refusal(self, index: int, blob) -> str:
        """Why the byte string ``blob`` (number ``index``) fails the checks."""
        if not isinstance(blob, bytes | bytearray):
            return f"code {index} is {type(blob).__name__}, expected bytes."
        if len(blob) != self.bytes_per_code:
            return (
                f"code {index} has {len(blob)} bytes, expected {self.bytes_per_code} "
                f"for {self.latent_dim} numbers at {self.bits} bits: it is truncated or not from this codec."
            )
        if blob[0] != self.header:
            return (
                f"code {index} has header {blob[0]:#04x}, expected {self.header:#04x}: "
                "it was written by another codec setting or version."
            )
        return f"code {index} fails its checksum: the bytes are corrupt."

    def decode_levels(self, encoded: list[bytes]) -> np.ndarray:
        """Check and unpack byte strings back to the quantized integers ``(n, latent_dim)``."""
        encoded = _check_strings(encoded)
        passed = self.accepts(encoded)
        if not passed.all():
            index = int(np.argmin(passed))
            raise CodecError(self._refusal(index, encoded[index]))
        if not encoded:
            return np.zeros((0, self.latent_dim), dtype=np.uint8)
        payloads = _as_rows(encoded, self.bytes_per_code)[:, 1:-1]
        bits = np.unpackbits(payloads, axis=1)[:, : self.latent_dim * self.bits]
        bits = bits.reshape(len(payloads), self.latent_dim, self.bits)
        padded = np.concatenate([np.zeros((len(payloads), self.latent_dim, 8 - self.bits), np.uint8), bits], axis=2)
        return np.packbits(padded, axis=2)[:, :, 0]

    def decode(self, encoded: list[bytes]) -> np.ndarray:
        """Byte strings back to (dequantized) codes ``(n, latent_dim)``."""
        return self.dequantize(self.decode_levels(encoded))

    def to_json(self) -> str:
        """The fitted ranges as JSON text: what a receiver needs once, like a JPEG's quantization tables."""
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> LatentQuantizer:
        """Ranges written by ``to_json``; damaged or inconsistent text raises CodecError."""
        try:
            values = json.loads(text)
            return cls(values["bits"], tuple(values["low"]), tuple(values["high"]))
        except (TypeError, json.JSONDecodeError, KeyError, ValueError) as exc:
            raise CodecError(f"not a valid set of codec ranges: {type(exc).__name__}: {exc}") from exc


def damage(encoded: list[bytes], count: int = 1, unit: str = "byte", seed: int = config.SEED) -> list[bytes]:
    """Copies of equally long byte strings, each with ``count`` distinct random bits flipped (``unit="bit"``)
    or bytes changed to another value (``unit="byte"``), to measure what a checksum lets through."""
    encoded = _check_strings(encoded)
    if not encoded or any(not isinstance(blob, bytes | bytearray) for blob in encoded):
        raise TypeError("encoded must be a non-empty list of byte strings.")
    length = len(encoded[0])
    if any(len(blob) != length for blob in encoded):
        raise ValueError("encoded must hold byte strings of one length, such as the codes of one quantizer.")
    if unit not in ("bit", "byte"):
        raise ValueError(f"unit must be 'bit' or 'byte', got {unit!r}.")
    width = length * 8 if unit == "bit" else length
    checks.integer(count, f"count ({unit}s to damage per string)", 1, width)
    rows = _as_rows(encoded, length).copy()
    rng = np.random.default_rng(seed)
    positions = np.argpartition(rng.random((len(rows), width)), count - 1, axis=1)[:, :count]
    every = np.arange(len(rows))
    for column in positions.T:
        if unit == "bit":
            rows[every, column // 8] ^= (1 << (column % 8)).astype(np.uint8)
        else:
            rows[every, column] ^= rng.integers(1, 256, len(rows), dtype=np.uint8)
    return [row.tobytes() for row in rows]


# JPEG marker segments by what they hold (every segment counts its 2-byte marker and 2-byte length).
_JPEG_SEGMENTS = {
    0xDB: "quantization tables",
    0xC4: "Huffman tables",
    0xDA: "scan headers",
    0xDD: "restart interval",
    0xFE: "comments",
    **{marker: "frame header" for marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB)},
    **{marker: "application headers (JFIF)" for marker in range(0xE0, 0xF0)},
}


def _add(parts: dict[str, int], name: str, size: int) -> None:
    parts[name] = parts.get(name, 0) + size


def _jpeg_parts(blob: bytes) -> dict[str, int]:
    """A JPEG file's bytes by part; the payload is the entropy-coded scan data."""
    parts = {"start and end markers": 2}
    at = 2
    while at + 1 < len(blob):
        if blob[at] != 0xFF:
            raise CodecError(f"JPEG: expected a marker at byte {at}, found {blob[at]:#04x}.")
        marker = blob[at + 1]
        if marker == 0xD9:
            _add(parts, "start and end markers", 2)
            at += 2
            break
        length = int.from_bytes(blob[at + 2 : at + 4], "big")
        _add(parts, _JPEG_SEGMENTS.get(marker, "other headers"), 2 + length)
        at += 2 + length
        if marker == 0xDA:  # the scan: coded data up to the next marker that is not 0xFF00 or a restart
            end = at
            while True:
                end = blob.find(b"\xff", end)
                if end < 0 or end + 1 >= len(blob):
                    raise CodecError("JPEG: a scan runs to the end of the file without an end marker.")
                if blob[end + 1] != 0x00 and not 0xD0 <= blob[end + 1] <= 0xD7:
                    break
                end += 2
            _add(parts, "payload", end - at)
            at = end
    if at != len(blob):
        _add(parts, "trailing bytes", len(blob) - at)
    return parts


def _png_parts(blob: bytes) -> dict[str, int]:
    """A PNG file's bytes by part; the payload is the deflate data inside the IDAT chunks."""
    parts = {"signature": 8}
    at = 8
    while at + 8 <= len(blob):
        length, kind = int.from_bytes(blob[at : at + 4], "big"), blob[at + 4 : at + 8]
        if kind == b"IDAT":
            _add(parts, "IDAT chunk framing", 12)
            _add(parts, "payload", length)
        else:
            _add(
                parts, f"{kind.decode('latin-1')} chunk" if kind in (b"IHDR", b"IEND") else "other chunks", 12 + length
            )
        at += 12 + length
    if "payload" not in parts or at != len(blob):
        raise CodecError("PNG: the chunks do not add up to the file, or there is no image data.")
    parts["zlib header and checksum"] = 6  # 2 header bytes before the deflate data, 4 Adler-32 bytes after
    parts["payload"] -= 6
    return parts


def _webp_parts(blob: bytes) -> dict[str, int]:
    """A WebP file's bytes by part; the payload is the VP8 or VP8L bitstream after its frame header."""
    parts = {"RIFF header": 12}
    at = 12
    frame_headers = {b"VP8 ": 10, b"VP8L": 5}  # VP8: frame tag, start code, size; VP8L: signature, size
    while at + 8 <= len(blob):
        kind, length = blob[at : at + 4], int.from_bytes(blob[at + 4 : at + 8], "little")
        _add(parts, "chunk headers", 8 + (length & 1))  # a chunk of odd length is padded by one byte
        if kind in frame_headers:
            _add(parts, f"{kind.decode().strip()} frame header", frame_headers[kind])
            _add(parts, "payload", length - frame_headers[kind])
        else:
            _add(parts, "other chunks", length)
        at += 8 + length + (length & 1)
    if "payload" not in parts or at != len(blob):
        raise CodecError("WebP: the chunks do not add up to the file, or there is no image data.")
    return parts


def file_parts(blob: bytes) -> dict[str, int]:
    """The bytes of a JPEG, PNG or WebP file by part: ``"payload"`` (the coded pixels) and the container's
    parts (signature, headers, tables, framing), which add up to ``len(blob)``."""
    if not isinstance(blob, bytes | bytearray):
        raise TypeError(f"blob must be the bytes of one image file, got {type(blob).__name__}.")
    blob = bytes(blob)
    if blob[:2] == b"\xff\xd8":
        return _jpeg_parts(blob)
    if blob[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_parts(blob)
    if blob[:4] == b"RIFF" and blob[8:12] == b"WEBP":
        return _webp_parts(blob)
    raise ValueError(f"blob is not a JPEG, PNG or WebP file (it starts with {blob[:12]!r}).")


# Formats with a quality setting, and the range Pillow documents for it.
QUALITY_RANGES = {"JPEG": (0, 100), "WEBP": (0, 100)}
CODEC_NAMES = {"WEBP": "WebP", "JPEG": "JPEG", "PNG": "PNG"}


def _check_pillow_format(format: str, options: dict) -> str:
    """The upper-case format name, if Pillow can both write and read it and ``quality`` is in range."""
    from PIL import Image

    Image.init()
    if not isinstance(format, str):
        raise TypeError(f"format must be a string such as 'PNG', 'JPEG' or 'WEBP', got {type(format).__name__}.")
    name = format.upper()
    if name not in Image.SAVE or name not in Image.OPEN:
        readable = sorted(set(Image.SAVE) & set(Image.OPEN))
        raise ValueError(
            f"format must be one Pillow can write and read, such as {', '.join(readable)}; got {format!r}."
        )
    if "quality" in options:
        if name not in QUALITY_RANGES:
            raise ValueError(f"quality only applies to {' and '.join(QUALITY_RANGES)}; {name} has no quality setting.")
        checks.integer(options["quality"], f"quality for {name}", *QUALITY_RANGES[name])
    return name


def _save(image: np.ndarray, format: str, options: dict) -> bytes:
    """One greyscale uint8 image as the bytes of a file in ``format``."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image, mode="L").save(buffer, format=format, **options)
    return buffer.getvalue()


def _open(blob: bytes) -> np.ndarray:
    """The greyscale pixels of an image file's bytes."""
    from PIL import Image

    with Image.open(io.BytesIO(blob)) as image:
        return np.asarray(image.convert("L"))


def pillow_files(images: np.ndarray, format: str, **options) -> tuple[list[bytes], np.ndarray]:
    """Encode every uint8 image as its own file with Pillow and decode it again.

    Returns ``(files, decoded_images)``; ``options`` go to ``Image.save`` (e.g. ``quality=50``).
    """
    format = _check_pillow_format(format, options)
    images = checks.images(images, dtype="uint8").reshape(-1, *IMAGE_SHAPE)
    files = [_save(image, format, options) for image in images]
    return files, np.stack([_open(blob) for blob in files])


def tile(images: np.ndarray, columns: int = 100) -> np.ndarray:
    """Images ``(n, 28, 28)`` side by side in one mosaic, ``columns`` per row (``n`` a multiple of it)."""
    images = checks.images(images, dtype="any").reshape(-1, *IMAGE_SHAPE)
    checks.integer(columns, "columns", 1)
    if len(images) % columns:
        raise ValueError(f"the {len(images)} images do not fill rows of {columns}; pass a multiple of {columns}.")
    rows = len(images) // columns
    return (
        images.reshape(rows, columns, *IMAGE_SHAPE)
        .transpose(0, 2, 1, 3)
        .reshape(rows * IMAGE_SHAPE[0], columns * IMAGE_SHAPE[1])
    )


def untile(mosaic: np.ndarray, columns: int = 100) -> np.ndarray:
    """The images ``(n, 28, 28)`` of a mosaic made by ``tile``."""
    rows = mosaic.shape[0] // IMAGE_SHAPE[0]
    return mosaic.reshape(rows, IMAGE_SHAPE[0], columns, IMAGE_SHAPE[1]).transpose(0, 2, 1, 3).reshape(-1, *IMAGE_SHAPE)


def pillow_mosaic(images: np.ndarray, format: str, columns: int = 100, **options) -> tuple[bytes, np.ndarray]:
    """Encode all uint8 images as one mosaic file with Pillow, decode it, and cut it back into images.

    Returns ``(file, decoded_images)``: the file's size over the number of images is the bytes per image
    with the container shared by all of them.
    """
    format = _check_pillow_format(format, options)
    mosaic = tile(checks.images(images, dtype="uint8"), columns)
    blob = _save(mosaic, format, options)
    return blob, untile(_open(blob), columns)


def _psnr(originals: np.ndarray, decoded: np.ndarray) -> float:
    """Mean PSNR of decoded images against the originals, both uint8 or both floats in [0, 1]."""
    from utils import metrics

    scale = 255 if np.asarray(originals).dtype == np.uint8 else 1
    return float(
        metrics.psnr_per_image(
            np.asarray(originals, np.float32) / scale, np.asarray(decoded, np.float32) / scale
        ).mean()
    )


def measure_latent_codec(
    codec_name: str, quantizer: LatentQuantizer, codes: np.ndarray, decode_fn, originals: np.ndarray
) -> tuple[dict, np.ndarray]:
    """Encode codes to bytes, decode the bytes, rebuild images with ``decode_fn``, and measure them.

    The row's ``bytes`` is the mean payload of the encoded strings (their length without the header
    and checksum); ``originals`` are float images in [0, 1].
    """
    encoded = quantizer.encode(codes)
    rebuilt = np.clip(np.asarray(decode_fn(quantizer.decode(encoded)), dtype=np.float32), 0, 1)
    rebuilt = rebuilt.reshape(len(rebuilt), *IMAGE_SHAPE)
    row = {
        "codec": codec_name,
        "setting": f"{quantizer.latent_dim} x {quantizer.bits} bits",
        "bytes": float(np.mean([len(blob) - FRAMING_BYTES for blob in encoded])),
        "psnr": _psnr(originals, rebuilt),
    }
    return row, rebuilt


def measure_pillow_files(images: np.ndarray, format: str, setting: str = "", **options) -> tuple[dict, np.ndarray]:
    """Round-trip uint8 images through a Pillow codec one file each: mean file, container and payload bytes, PSNR."""
    files, decoded = pillow_files(images, format, **options)
    containers = np.array([len(blob) - file_parts(blob)["payload"] for blob in files])
    sizes = np.array([len(blob) for blob in files])
    row = {
        "codec": CODEC_NAMES.get(format.upper(), format),
        "setting": setting,
        "file bytes": float(sizes.mean()),
        "container bytes": float(containers.mean()),
        "payload bytes": float((sizes - containers).mean()),
        "psnr": _psnr(images, decoded),
    }
    return row, decoded


def measure_pillow_mosaic(
    images: np.ndarray, format: str, setting: str = "", columns: int = 100, **options
) -> tuple[dict, np.ndarray]:
    """Round-trip all uint8 images through a Pillow codec as one mosaic file: bytes per image and mean PSNR."""
    blob, decoded = pillow_mosaic(images, format, columns, **options)
    row = {
        "codec": CODEC_NAMES.get(format.upper(), format),
        "setting": setting,
        "bytes": len(blob) / len(decoded),
        "psnr": _psnr(images, decoded),
    }
    return row, decoded
