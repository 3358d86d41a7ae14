"""Turn latent codes into bytes and back (notebook 07), and measure classical image codecs through Pillow.

A code of ``latent_dim`` numbers is quantized to ``bits`` per number with ranges fitted on the
training set, bit-packed, and framed by one header byte and one checksum byte:

    [header: format version << 4 | (bits - 1)] [payload: ceil(latent_dim * bits / 8) bytes] [crc32 & 0xFF]
"""

from __future__ import annotations

import io
import json
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from utils import checks
from utils.checks import IMAGE_SHAPE
from utils.files import write_atomically

FORMAT_VERSION = 1


class CodecError(ValueError):
    """Raised for a byte string that is not a valid encoding for this codec."""


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
        coverage = checks.number(
            coverage, "coverage (the share of codes inside the range)", 0, 1, low_open=True
        )
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
    def bytes_per_code(self) -> int:
        """Bytes of one encoded code: header, packed payload and checksum."""
        return 2 + (self.latent_dim * self.bits + 7) // 8

    def quantize(self, codes: np.ndarray) -> np.ndarray:
        """Map codes to integers 0..2**bits-1 (values outside the fitted range are clipped)."""
        codes = checks.points(codes, "codes", self.latent_dim)
        low, high = np.array(self.low), np.array(self.high)
        steps = np.round((codes - low) / (high - low) * (self.levels - 1))
        return np.clip(steps, 0, self.levels - 1).astype(np.uint8)

    def dequantize(self, levels: np.ndarray) -> np.ndarray:
        """Map integers back to the centre values of their quantization steps, as float32."""
        low, high = np.array(self.low), np.array(self.high)
        return (low + np.asarray(levels, dtype=np.float64) / (self.levels - 1) * (high - low)).astype(
            np.float32
        )

    def encode(self, codes: np.ndarray) -> list[bytes]:
        """Encode a batch of codes ``(n, latent_dim)`` into one byte string per code."""
        levels = self.quantize(codes)
        bits = np.unpackbits(levels[:, :, None], axis=2)[:, :, 8 - self.bits :].reshape(len(levels), -1)
        payloads = np.packbits(bits, axis=1)
        header = bytes([FORMAT_VERSION << 4 | (self.bits - 1)])
        encoded = []
        for payload in payloads:
            body = header + payload.tobytes()
            encoded.append(body + bytes([zlib.crc32(body) & 0xFF]))
        return encoded

    def decode_levels(self, encoded: list[bytes]) -> np.ndarray:
        """Check and unpack byte strings back to the quantized integers ``(n, latent_dim)``."""
        payload_bytes = self.bytes_per_code - 2
        rows = []
        for index, blob in enumerate(encoded):
            if not isinstance(blob, bytes | bytearray):
                raise CodecError(f"code {index} is {type(blob).__name__}, expected bytes.")
            if len(blob) != self.bytes_per_code:
                raise CodecError(
                    f"code {index} has {len(blob)} bytes, expected {self.bytes_per_code} "
                    f"for {self.latent_dim} numbers at {self.bits} bits: it is truncated or not from this codec."
                )
            if blob[0] != FORMAT_VERSION << 4 | (self.bits - 1):
                raise CodecError(
                    f"code {index} has header {blob[0]:#04x}, expected {FORMAT_VERSION << 4 | (self.bits - 1):#04x}: "
                    "it was written by another codec setting."
                )
            if zlib.crc32(blob[:-1]) & 0xFF != blob[-1]:
                raise CodecError(f"code {index} fails its checksum: the bytes are corrupt.")
            rows.append(np.frombuffer(blob[1 : 1 + payload_bytes], dtype=np.uint8))
        if not rows:
            return np.zeros((0, self.latent_dim), dtype=np.uint8)
        bits = np.unpackbits(np.stack(rows), axis=1)[:, : self.latent_dim * self.bits]
        bits = bits.reshape(len(rows), self.latent_dim, self.bits)
        padded = np.concatenate(
            [np.zeros((len(rows), self.latent_dim, 8 - self.bits), np.uint8), bits], axis=2
        )
        return np.packbits(padded, axis=2)[:, :, 0]

    def decode(self, encoded: list[bytes]) -> np.ndarray:
        """Byte strings back to (dequantized) codes ``(n, latent_dim)``."""
        return self.dequantize(self.decode_levels(encoded))

    def save(self, path: Path) -> None:
        """Store the fitted ranges as JSON (beside the model they belong to), atomically."""
        text = json.dumps(asdict(self), indent=1).encode()
        write_atomically(Path(path), lambda handle: handle.write(text))

    @classmethod
    def load(cls, path: Path) -> LatentQuantizer:
        """Read ranges written by ``save``; a damaged or inconsistent file raises CodecError naming it."""
        try:
            values = json.loads(Path(path).read_text())
            return cls(values["bits"], tuple(values["low"]), tuple(values["high"]))
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise CodecError(f"{path} is not a valid codec file: {type(exc).__name__}: {exc}") from exc


# Formats with a quality setting, and the range Pillow documents for it.
QUALITY_RANGES = {"JPEG": (0, 100), "WEBP": (0, 100)}


def _check_pillow_format(format: str, options: dict) -> str:
    """The upper-case format name, if Pillow can both write and read it and ``quality`` is in range."""
    from PIL import Image

    Image.init()
    if not isinstance(format, str):
        raise TypeError(
            f"format must be a string such as 'PNG', 'JPEG' or 'WEBP', got {type(format).__name__}."
        )
    name = format.upper()
    if name not in Image.SAVE or name not in Image.OPEN:
        readable = sorted(set(Image.SAVE) & set(Image.OPEN))
        raise ValueError(
            f"format must be one Pillow can write and read, such as {', '.join(readable)}; got {format!r}."
        )
    if "quality" in options:
        if name not in QUALITY_RANGES:
            raise ValueError(
                f"quality only applies to {' and '.join(QUALITY_RANGES)}; {name} has no quality setting."
            )
        checks.integer(options["quality"], f"quality for {name}", *QUALITY_RANGES[name])
    return name


def pillow_round_trip(images: np.ndarray, format: str, **options) -> tuple[np.ndarray, np.ndarray]:
    """Encode every uint8 image on its own with Pillow and decode it again.

    Returns ``(bytes_per_image, decoded_images)``; ``options`` go to ``Image.save`` (e.g. ``quality=50``).
    """
    from PIL import Image

    format = _check_pillow_format(format, options)
    images = checks.images(images, dtype="uint8").reshape(-1, *IMAGE_SHAPE)
    sizes = np.empty(len(images), dtype=np.int64)
    decoded = np.empty_like(images)
    for index, image in enumerate(images):
        buffer = io.BytesIO()
        Image.fromarray(image, mode="L").save(buffer, format=format, **options)
        sizes[index] = buffer.tell()
        buffer.seek(0)
        with Image.open(buffer) as reopened:
            decoded[index] = np.asarray(reopened.convert("L"))
    return sizes, decoded


def rate_distortion_point(
    codec_name: str, setting: str, sizes: np.ndarray, originals: np.ndarray, decoded: np.ndarray
) -> dict:
    """One row of a rate-distortion table: mean bytes per image, ratio to raw, and mean PSNR.

    ``originals`` and ``decoded`` are float images in [0, 1]; ``sizes`` are the real encoded sizes.
    (SSIM costs about a second per 10,000 images; compute it for the rows you single out.)
    """
    from utils import metrics

    quality = {"psnr": float(metrics.psnr_per_image(originals, decoded).mean())}
    mean_bytes = float(np.mean(sizes))
    return {
        "codec": codec_name,
        "setting": setting,
        "bytes": mean_bytes,
        "ratio": 784 / mean_bytes,
        **quality,
    }


def measure_latent_codec(
    codec_name: str, quantizer: LatentQuantizer, test_codes: np.ndarray, decode_fn, originals: np.ndarray
) -> tuple[dict, np.ndarray]:
    """Encode codes to bytes, decode the bytes, rebuild images with ``decode_fn``, and measure them."""
    encoded = quantizer.encode(test_codes)
    sizes = np.array([len(blob) for blob in encoded])
    rebuilt = np.clip(np.asarray(decode_fn(quantizer.decode(encoded)), dtype=np.float32), 0, 1)
    rebuilt = rebuilt.reshape(len(rebuilt), *IMAGE_SHAPE)
    setting = f"{quantizer.latent_dim} x {quantizer.bits} bits"
    return rate_distortion_point(codec_name, setting, sizes, originals, rebuilt), rebuilt


def measure_pillow_codec(
    images: np.ndarray, format: str, setting: str = "", **options
) -> tuple[dict, np.ndarray]:
    """Round-trip uint8 images through a Pillow codec one by one, and measure size and quality."""
    sizes, decoded = pillow_round_trip(images, format, **options)
    name = {"WEBP": "WebP", "JPEG": "JPEG", "PNG": "PNG"}.get(format.upper(), format)
    point = rate_distortion_point(
        name, setting, sizes, images.astype(np.float32) / 255, decoded.astype(np.float32) / 255
    )
    return point, decoded
