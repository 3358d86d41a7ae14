"""Latent codes as checked bytes and back (notebook 07), and classical image codecs measured through Pillow."""

import io
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from utils import checks, config, metrics
from utils.checks import IMAGE_SHAPE

# A code's bytes: [header: FORMAT_VERSION << 4 | bits - 1] [payload: latent_dim * bits bits, packed] [CRC-8 of both].
# The CRC-8 catches every error inside one byte and every odd number of flipped bits, other damage 255 times in 256.
FORMAT_VERSION = 2  # version 1 used the low byte of a CRC-32, which misses some one-byte errors
FRAMING_BYTES = 2  # the header byte and the checksum byte
CRC8_POLYNOMIAL = 0x07  # x^8 + x^2 + x + 1


def crc8(rows: np.ndarray) -> np.ndarray:
    """The CRC-8 (polynomial 0x07, start value 0) of each row of a ``(n, length)`` uint8 array."""
    rows = np.asarray(rows, dtype=np.uint8)
    if rows.ndim != 2:
        raise ValueError(f"rows must be a 2-D array of bytes, one message per row; got shape {rows.shape}.")
    table = np.arange(256, dtype=np.uint16)  # the CRC of every byte value, for a byte-at-a-time CRC
    for _ in range(8):
        table = np.where(table & 0x80, (table << 1) ^ CRC8_POLYNOMIAL, table << 1) & 0xFF
    crc = np.zeros(len(rows), dtype=np.uint16)
    for column in rows.T:
        crc = table[crc ^ column]
    return crc.astype(np.uint8)


class CodecError(ValueError):
    """Raised for a byte string that is not a valid encoding for this codec."""


def _as_rows(encoded: list[bytes], length: int) -> np.ndarray:
    return np.frombuffer(b"".join(encoded), dtype=np.uint8).reshape(-1, length)


@dataclass(frozen=True)
class LatentQuantizer:
    """Uniform per-dimension quantization of latent codes, with ranges fitted on training codes."""

    bits: int
    low: tuple[float, ...]
    high: tuple[float, ...]

    def __post_init__(self) -> None:
        checks.integer(self.bits, "bits", 1, 8)
        low, high = checks.points(self.low, "low"), checks.points(self.high, "high")
        if low.shape != high.shape:
            raise ValueError(f"low and high must be equally long, got {len(low)} and {len(high)} numbers.")
        backwards = np.flatnonzero(high <= low)
        if backwards.size:
            first = backwards[0]
            raise ValueError(
                f"high must be above low in every dimension; dimension {first} has low {low[first]:g} "
                f"and high {high[first]:g}."
            )

    @classmethod
    def fit(cls, training_codes: np.ndarray, bits: int, coverage: float = 0.999) -> "LatentQuantizer":
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
        """Indices back to their levels (float32), ``2**bits`` evenly spaced from ``low`` to ``high``, both included."""
        low, high = np.array(self.low), np.array(self.high)
        return (low + np.asarray(levels, dtype=np.float64) / (self.levels - 1) * (high - low)).astype(np.float32)

    def encode(self, codes: np.ndarray) -> list[bytes]:
        """Encode a batch of codes ``(n, latent_dim)`` into one byte string per code."""
        levels = self.quantize(codes)
        bits = np.unpackbits(levels[:, :, None], axis=2)[:, :, 8 - self.bits :].reshape(len(levels), -1)
        bodies = np.concatenate([np.full((len(levels), 1), self.header, np.uint8), np.packbits(bits, axis=1)], axis=1)
        return [row.tobytes() for row in np.concatenate([bodies, crc8(bodies)[:, None]], axis=1)]

    def accepts(self, encoded: list[bytes]) -> np.ndarray:
        """For each byte string, whether it passes the checks: type, length, header and checksum."""
        if not isinstance(encoded, list | tuple):
            raise TypeError(f"encoded must be a list of byte strings, got {type(encoded).__name__}.")
        size = self.bytes_per_code
        sized = np.array([isinstance(b, bytes | bytearray) and len(b) == size for b in encoded], bool)
        # strings of the wrong type or length are refused already; zeros stand in for them in the array of rows
        rows = _as_rows([b if ok else bytes(size) for b, ok in zip(encoded, sized, strict=True)], size)
        return sized & (rows[:, 0] == self.header) & (crc8(rows[:, :-1]) == rows[:, -1])

    def decode_levels(self, encoded: list[bytes]) -> np.ndarray:
        """Check and unpack byte strings back to the quantized integers ``(n, latent_dim)``."""
        failed = np.flatnonzero(~self.accepts(encoded))
        if failed.size:
            index, blob = failed[0], encoded[failed[0]]
            if not isinstance(blob, bytes | bytearray):
                raise CodecError(f"code {index} is {type(blob).__name__}, expected bytes.")
            if len(blob) != self.bytes_per_code:
                raise CodecError(
                    f"code {index} has {len(blob)} bytes, expected {self.bytes_per_code} "
                    f"for {self.latent_dim} numbers at {self.bits} bits: it is truncated or not from this codec."
                )
            if blob[0] != self.header:
                raise CodecError(
                    f"code {index} has header {blob[0]:#04x}, expected {self.header:#04x}: "
                    "it was written by another codec setting or version."
                )
            raise CodecError(f"code {index} fails its checksum: the bytes are corrupt.")
        payloads = _as_rows(encoded, self.bytes_per_code)[:, 1:-1]
        bits = np.unpackbits(payloads, axis=1)[:, : self.latent_dim * self.bits]
        weights = 2 ** np.arange(self.bits - 1, -1, -1)  # each number's bits come most significant first
        return (bits.reshape(len(payloads), self.latent_dim, self.bits) @ weights).astype(np.uint8)

    def decode(self, encoded: list[bytes]) -> np.ndarray:
        """Byte strings back to (dequantized) codes ``(n, latent_dim)``."""
        return self.dequantize(self.decode_levels(encoded))

    def to_json(self) -> str:
        """The fitted ranges as JSON text: what a receiver needs once, like a JPEG's quantization tables."""
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "LatentQuantizer":
        """Ranges written by ``to_json``; damaged or inconsistent text raises CodecError."""
        try:
            values = json.loads(text)
            return cls(values["bits"], tuple(values["low"]), tuple(values["high"]))
        except (TypeError, json.JSONDecodeError, KeyError, ValueError) as exc:
            raise CodecError(f"not a valid set of codec ranges: {type(exc).__name__}: {exc}") from exc


def damage(encoded: list[bytes], count: int = 1, unit: str = "byte", seed: int = config.SEED) -> list[bytes]:
    """Copies of equally long byte strings, each with ``count`` distinct random ``unit``s (bits or bytes) changed."""
    if not isinstance(encoded, list | tuple):
        raise TypeError(f"encoded must be a list of byte strings, got {type(encoded).__name__}.")
    if not encoded or any(not isinstance(blob, bytes | bytearray) for blob in encoded):
        raise TypeError("encoded must be a non-empty list of byte strings.")
    if len({len(blob) for blob in encoded}) > 1:
        raise ValueError("encoded must hold byte strings of one length, such as the codes of one quantizer.")
    if unit not in ("bit", "byte"):
        raise ValueError(f"unit must be 'bit' or 'byte', got {unit!r}.")
    rows = _as_rows(encoded, len(encoded[0])).copy()
    width = rows.shape[1] * 8 if unit == "bit" else rows.shape[1]
    checks.integer(count, f"count ({unit}s to damage per string)", 1, width)
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
_JPEG_SEGMENTS = {0xDB: "quantization tables", 0xC4: "Huffman tables", 0xDA: "scan headers", 0xDD: "restart interval"}
_JPEG_SEGMENTS |= {0xFE: "comments"} | dict.fromkeys(range(0xE0, 0xF0), "application headers (JFIF)")
_JPEG_SEGMENTS |= dict.fromkeys((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB), "frame header")
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")  # 0xFF not followed by a stuffed zero or a restart number


def _jpeg_parts(blob: bytes) -> dict[str, int]:
    """A JPEG file's bytes by part; the payload is the entropy-coded scan data."""
    parts, at = Counter({"start and end markers": 2}), 2
    while at + 1 < len(blob):
        if blob[at] != 0xFF:
            raise CodecError(f"JPEG: expected a marker at byte {at}, found {blob[at]:#04x}.")
        marker = blob[at + 1]
        if marker == 0xD9:
            parts["start and end markers"] += 2
            at += 2
            break
        length = int.from_bytes(blob[at + 2 : at + 4], "big")
        parts[_JPEG_SEGMENTS.get(marker, "other headers")] += 2 + length
        at += 2 + length
        if marker == 0xDA:  # the scan: coded data up to the next marker
            end = _JPEG_MARKER.search(blob, at)
            if end is None:
                raise CodecError("JPEG: a scan runs to the end of the file without an end marker.")
            parts["payload"] += end.start() - at
            at = end.start()
    if at != len(blob):
        parts["trailing bytes"] += len(blob) - at
    return dict(parts)


def _png_parts(blob: bytes) -> dict[str, int]:
    """A PNG file's bytes by part; the payload is the deflate data inside the IDAT chunks."""
    parts, at = Counter({"signature": 8}), 8
    while at + 8 <= len(blob):
        length, kind = int.from_bytes(blob[at : at + 4], "big"), blob[at + 4 : at + 8]
        if kind == b"IDAT":
            parts["IDAT chunk framing"] += 12
            parts["payload"] += length
        else:
            parts[f"{kind.decode('latin-1')} chunk" if kind in (b"IHDR", b"IEND") else "other chunks"] += 12 + length
        at += 12 + length
    if "payload" not in parts or at != len(blob):
        raise CodecError("PNG: the chunks do not add up to the file, or there is no image data.")
    parts["zlib header and checksum"] = 6  # 2 header bytes before the deflate data, 4 Adler-32 bytes after
    parts["payload"] -= 6
    return dict(parts)


def _webp_parts(blob: bytes) -> dict[str, int]:
    """A WebP file's bytes by part; the payload is the VP8 or VP8L bitstream after its frame header."""
    parts, at = Counter({"RIFF header": 12}), 12
    frame_headers = {b"VP8 ": 10, b"VP8L": 5}  # VP8: frame tag, start code, size; VP8L: signature, size
    while at + 8 <= len(blob):
        kind, length = blob[at : at + 4], int.from_bytes(blob[at + 4 : at + 8], "little")
        parts["chunk headers"] += 8 + (length & 1)  # a chunk of odd length is padded by one byte
        if kind in frame_headers:
            parts[f"{kind.decode().strip()} frame header"] += frame_headers[kind]
            parts["payload"] += length - frame_headers[kind]
        else:
            parts["other chunks"] += length
        at += 8 + length + (length & 1)
    if "payload" not in parts or at != len(blob):
        raise CodecError("WebP: the chunks do not add up to the file, or there is no image data.")
    return dict(parts)


def file_parts(blob: bytes) -> dict[str, int]:
    """A JPEG, PNG or WebP file's bytes by part, adding up to ``len(blob)``: the container's and ``"payload"``."""
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


CODEC_NAMES = {"WEBP": "WebP", "JPEG": "JPEG", "PNG": "PNG"}


def _check_pillow_format(format: str, options: dict) -> str:
    """The upper-case format name, if Pillow can both write and read it and ``quality`` is in range."""
    Image.init()
    if not isinstance(format, str):
        raise TypeError(f"format must be a string such as 'PNG', 'JPEG' or 'WEBP', got {type(format).__name__}.")
    name = format.upper()
    if name not in Image.SAVE or name not in Image.OPEN:
        readable = ", ".join(sorted(set(Image.SAVE) & set(Image.OPEN)))
        raise ValueError(f"format must be one Pillow can write and read, such as {readable}; got {format!r}.")
    if "quality" in options:
        if name not in ("JPEG", "WEBP"):
            raise ValueError(f"quality only applies to JPEG and WEBP; {name} has no quality setting.")
        checks.integer(options["quality"], f"quality for {name}", 0, 100)  # the range Pillow documents
    return name


def _round_trip(image: np.ndarray, format: str, options: dict) -> tuple[bytes, np.ndarray]:
    buffer = io.BytesIO()
    Image.fromarray(image, mode="L").save(buffer, format=format, **options)
    blob = buffer.getvalue()
    with Image.open(io.BytesIO(blob)) as decoded:
        return blob, np.asarray(decoded.convert("L"))


def pillow_files(images: np.ndarray, format: str, **options) -> tuple[list[bytes], np.ndarray]:
    """Every uint8 image as its own file (``options`` go to Pillow's ``Image.save``), and the files decoded again."""
    format = _check_pillow_format(format, options)
    images = checks.images(images, dtype="uint8").reshape(-1, *IMAGE_SHAPE)
    files, decoded = zip(*(_round_trip(image, format, options) for image in images), strict=True)
    return list(files), np.stack(decoded)


def tile(images: np.ndarray, columns: int = 100) -> np.ndarray:
    """Images ``(n, 28, 28)`` side by side in one mosaic, ``columns`` per row (``n`` a multiple of it)."""
    images = checks.images(images, dtype="any").reshape(-1, *IMAGE_SHAPE)
    checks.integer(columns, "columns", 1)
    if len(images) % columns:
        raise ValueError(f"the {len(images)} images do not fill rows of {columns}; pass a multiple of {columns}.")
    grid = images.reshape(-1, columns, *IMAGE_SHAPE).transpose(0, 2, 1, 3)  # rows of images, then their pixel rows
    return grid.reshape(-1, columns * IMAGE_SHAPE[1])


def untile(mosaic: np.ndarray, columns: int = 100) -> np.ndarray:
    """The images ``(n, 28, 28)`` of a mosaic made by ``tile``."""
    return mosaic.reshape(-1, IMAGE_SHAPE[0], columns, IMAGE_SHAPE[1]).transpose(0, 2, 1, 3).reshape(-1, *IMAGE_SHAPE)


def pillow_mosaic(images: np.ndarray, format: str, columns: int = 100, **options) -> tuple[bytes, np.ndarray]:
    """All uint8 images as one mosaic file with Pillow, and that file decoded and cut back into images."""
    format = _check_pillow_format(format, options)
    blob, decoded = _round_trip(tile(checks.images(images, dtype="uint8"), columns), format, options)
    return blob, untile(decoded, columns)


def _row(codec_name: str, setting: str, sizes: dict, originals: np.ndarray, decoded: np.ndarray) -> dict:
    """A table row: codec, setting, byte counts, and the mean PSNR of decoded images (uint8, or floats in [0, 1])."""
    scale = 255 if np.asarray(originals).dtype == np.uint8 else 1
    psnr = metrics.psnr_per_image(np.asarray(originals, np.float32) / scale, np.asarray(decoded, np.float32) / scale)
    return {"codec": codec_name, "setting": setting, **sizes, "psnr": float(psnr.mean())}


def measure_latent_codec(
    codec_name: str, quantizer: LatentQuantizer, codes: np.ndarray, decode_fn, originals: np.ndarray
) -> tuple[dict, np.ndarray]:
    """Encode codes to bytes, decode the bytes, rebuild images with ``decode_fn``, and measure them against the
    float ``originals``; the row's ``bytes`` is the mean payload of the strings (without header and checksum)."""
    encoded = quantizer.encode(codes)
    rebuilt = np.clip(np.asarray(decode_fn(quantizer.decode(encoded)), dtype=np.float32), 0, 1)
    rebuilt = rebuilt.reshape(len(rebuilt), *IMAGE_SHAPE)
    sizes = {"bytes": float(np.mean([len(blob) - FRAMING_BYTES for blob in encoded]))}
    return _row(codec_name, f"{quantizer.latent_dim} x {quantizer.bits} bits", sizes, originals, rebuilt), rebuilt


def measure_pillow_files(images: np.ndarray, format: str, setting: str = "", **options) -> tuple[dict, np.ndarray]:
    """Round-trip uint8 images through a Pillow codec one file each: mean file, container and payload bytes, PSNR."""
    files, decoded = pillow_files(images, format, **options)
    lengths = np.array([len(blob) for blob in files])
    payloads = np.array([file_parts(blob)["payload"] for blob in files])
    sizes = {"file bytes": lengths, "container bytes": lengths - payloads, "payload bytes": payloads}
    sizes = {name: float(values.mean()) for name, values in sizes.items()}
    return _row(CODEC_NAMES.get(format.upper(), format), setting, sizes, images, decoded), decoded


def measure_pillow_mosaic(
    images: np.ndarray, format: str, setting: str = "", columns: int = 100, **options
) -> tuple[dict, np.ndarray]:
    """Round-trip all uint8 images through a Pillow codec as one mosaic file: bytes per image and mean PSNR."""
    blob, decoded = pillow_mosaic(images, format, columns, **options)
    row = _row(CODEC_NAMES.get(format.upper(), format), setting, {"bytes": len(blob) / len(decoded)}, images, decoded)
    return row, decoded
