"""The latent codec, its checksum, the container parser and the Pillow measurements, on real MNIST digits
and PCA codes of them."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from sklearn.decomposition import PCA

from utils import codec, preprocessing


@pytest.fixture(scope="module")
def pca_codes(mnist):
    (x_train, _), (x_test, _) = mnist
    train = preprocessing.flatten_images(preprocessing.scale_images(x_train[:5000]))
    test = preprocessing.flatten_images(preprocessing.scale_images(x_test[:300]))
    pca = PCA(n_components=20, random_state=0).fit(train)
    return pca.transform(train), pca.transform(test)


@pytest.fixture(scope="module")
def pixel_codes(mnist):
    """A quantizer fitted on 16 real pixel values of each of 200 digits, and those codes."""
    (x_train, _), _ = mnist
    codes = preprocessing.flatten_images(preprocessing.scale_images(x_train[:200]))[:, ::49]
    return codec.LatentQuantizer.fit(codes, 4), codes


def with_one_nan(codes: np.ndarray) -> np.ndarray:
    poisoned = codes.copy()
    poisoned[3, 2] = np.nan
    return poisoned


@pytest.mark.parametrize("bits", [1, 3, 4, 7, 8])
def test_round_trip_gives_the_same_quantized_code(pca_codes, bits):
    train_codes, test_codes = pca_codes
    quantizer = codec.LatentQuantizer.fit(train_codes, bits)
    encoded = quantizer.encode(test_codes)
    assert len(encoded) == len(test_codes)
    assert np.array_equal(quantizer.decode_levels(encoded), quantizer.quantize(test_codes))
    decoded = quantizer.decode(encoded)
    assert decoded.shape == test_codes.shape and decoded.dtype == np.float32
    assert np.array_equal(quantizer.quantize(decoded), quantizer.quantize(test_codes))


@pytest.mark.parametrize(("bits", "payload"), [(8, 20), (4, 10), (3, 8), (1, 3)])
def test_byte_counts_are_real(pca_codes, bits, payload):
    train_codes, test_codes = pca_codes
    quantizer = codec.LatentQuantizer.fit(train_codes, bits)
    assert quantizer.payload_bytes == payload and quantizer.bytes_per_code == payload + codec.FRAMING_BYTES
    assert {len(blob) for blob in quantizer.encode(test_codes)} == {payload + 2}


@pytest.mark.parametrize("bits", [1, 3, 8])
def test_the_levels_span_the_range_with_both_ends(pca_codes, bits):
    """2**bits levels from low to high, 2**bits - 1 equal intervals; every number goes to its nearest level."""
    train_codes, test_codes = pca_codes
    quantizer = codec.LatentQuantizer.fit(train_codes, bits)
    low, high = np.array(quantizer.low), np.array(quantizer.high)
    expected = np.linspace(low, high, 2**bits)
    indices = np.repeat(np.arange(2**bits)[:, None], quantizer.latent_dim, axis=1)
    np.testing.assert_allclose(quantizer.dequantize(indices), expected, rtol=1e-6, atol=1e-6)
    inside = np.clip(test_codes, low, high)
    nearest = np.abs(inside[:, None, :] - expected[None]).argmin(axis=1)
    assert np.array_equal(quantizer.quantize(test_codes), nearest)


def test_more_bits_means_smaller_error(pca_codes):
    train_codes, test_codes = pca_codes
    errors = []
    for bits in (2, 4, 6, 8):
        quantizer = codec.LatentQuantizer.fit(train_codes, bits)
        errors.append(float(np.mean((quantizer.decode(quantizer.encode(test_codes)) - test_codes) ** 2)))
    assert errors == sorted(errors, reverse=True) and errors[-1] < errors[0] / 50


def test_the_crc_is_the_standard_crc8():
    """CRC-8 with polynomial 0x07 and start value 0 (CRC-8/SMBUS) gives 0xF4 for b"123456789"."""
    assert codec.crc8(np.frombuffer(b"123456789", np.uint8)[None])[0] == 0xF4
    assert codec.crc8(np.zeros((2, 5), np.uint8)).tolist() == [0, 0]


def test_every_error_inside_one_byte_is_refused(pca_codes):
    """All 8 single-bit flips and all 255 changes of every byte of real codes: none gets through."""
    train_codes, test_codes = pca_codes
    quantizer = codec.LatentQuantizer.fit(train_codes, 7)
    damaged = []
    for blob in quantizer.encode(test_codes[:3]):
        for position in range(len(blob)):
            for change in range(1, 256):
                copy = bytearray(blob)
                copy[position] ^= change
                damaged.append(bytes(copy))
    assert len(damaged) == 3 * quantizer.bytes_per_code * 255
    assert not quantizer.accepts(damaged).any()


def test_wider_damage_passes_about_once_in_256_tries(pca_codes):
    train_codes, test_codes = pca_codes
    quantizer = codec.LatentQuantizer.fit(train_codes, 7)
    damaged = codec.damage(quantizer.encode(test_codes) * 200, 2, "byte", seed=1)
    header_kept = np.array([blob[0] == quantizer.header for blob in damaged])
    share = quantizer.accepts(damaged)[header_kept].mean()
    tries = header_kept.sum()
    spread = 4 * np.sqrt(1 / 256 * (1 - 1 / 256) / tries)
    assert abs(share - 1 / 256) < spread, f"{share:.4%} of {tries} tries passed"


@pytest.mark.parametrize(("count", "unit"), [(1, "bit"), (3, "bit"), (1, "byte"), (4, "byte")])
def test_damage_changes_exactly_what_it_says(pca_codes, count, unit):
    train_codes, test_codes = pca_codes
    encoded = codec.LatentQuantizer.fit(train_codes, 5).encode(test_codes)
    damaged = codec.damage(encoded, count, unit, seed=3)
    before, after = (
        np.frombuffer(b"".join(strings), np.uint8).reshape(len(encoded), -1) for strings in (encoded, damaged)
    )
    changed = np.unpackbits(before ^ after, axis=1).sum(axis=1) if unit == "bit" else (before != after).sum(axis=1)
    assert set(changed.tolist()) == {count}
    assert codec.damage(encoded, count, unit, seed=3) == damaged, "the same seed damages the same way"


def test_damage_refuses_bad_arguments(pca_codes):
    train_codes, test_codes = pca_codes
    encoded = codec.LatentQuantizer.fit(train_codes, 5).encode(test_codes[:4])
    with pytest.raises(ValueError, match="one length"):
        codec.damage([encoded[0], encoded[1][:-1]])
    with pytest.raises(ValueError, match="unit must be 'bit' or 'byte'"):
        codec.damage(encoded, 1, "word")
    with pytest.raises(ValueError, match=r"count \(bytes to damage per string\) must be from 1 to 15"):
        codec.damage(encoded, 16)
    with pytest.raises(TypeError, match="non-empty list of byte strings"):
        codec.damage([])


def test_corrupt_bytes_are_refused_by_name(pca_codes):
    train_codes, test_codes = pca_codes
    quantizer = codec.LatentQuantizer.fit(train_codes, 5)
    good = quantizer.encode(test_codes[:3])
    flipped = bytearray(good[1])
    flipped[4] ^= 0x10
    with pytest.raises(codec.CodecError, match="code 1 fails its checksum"):
        quantizer.decode([good[0], bytes(flipped)])
    with pytest.raises(codec.CodecError, match="truncated"):
        quantizer.decode([good[0][:-3]])
    other = codec.LatentQuantizer.fit(train_codes, 6).encode(test_codes[:1])[0]
    with pytest.raises(codec.CodecError, match="truncated|another codec"):
        quantizer.decode([other])
    with pytest.raises(codec.CodecError, match="code 0 has header 0x14, expected 0x24: .*or version"):
        quantizer.decode([bytes([0x14]) + good[0][1:]])  # format version 1, the same bit depth
    with pytest.raises(codec.CodecError, match="expected bytes"):
        quantizer.decode(["not bytes"])
    with pytest.raises(TypeError, match="encoded must be a list of byte strings"):
        quantizer.decode(good[0])
    assert quantizer.accepts(good + [good[0][:-1], "text", bytes(flipped)]).tolist() == [True] * 3 + [False] * 3
    assert quantizer.decode_levels([]).shape == (0, 20)


def test_ranges_travel_as_json(pca_codes):
    train_codes, test_codes = pca_codes
    quantizer = codec.LatentQuantizer.fit(train_codes, 6)
    loaded = codec.LatentQuantizer.from_json(quantizer.to_json())
    assert loaded == quantizer
    assert loaded.encode(test_codes) == quantizer.encode(test_codes)


def test_bad_codes_are_refused(pca_codes):
    train_codes, _ = pca_codes
    quantizer = codec.LatentQuantizer.fit(train_codes, 4)
    with pytest.raises(ValueError, match=r"shape \(n, 20\)"):
        quantizer.encode(train_codes[:, :10])
    with pytest.raises(ValueError, match="NaN"):
        quantizer.encode(np.full((1, 20), np.nan))
    with pytest.raises(ValueError, match="bits must be from 1 to 8, got 9"):
        codec.LatentQuantizer.fit(train_codes, 9)
    with pytest.raises(TypeError, match="bits must be an integer"):
        codec.LatentQuantizer.fit(train_codes, 4.5)
    with pytest.raises(ValueError, match=r"codes must have shape \(n, 20\), not empty"):
        quantizer.encode(train_codes[:0])


def test_damaged_ranges_are_refused(pca_codes):
    train_codes, _ = pca_codes
    text = codec.LatentQuantizer.fit(train_codes, 6).to_json()
    with pytest.raises(codec.CodecError, match="not a valid set of codec ranges: JSONDecodeError"):
        codec.LatentQuantizer.from_json(text[: len(text) // 2])
    values = json.loads(text)
    values["low"][3], values["high"][3] = values["high"][3], values["low"][3]
    with pytest.raises(codec.CodecError, match="high must be above low in every dimension; dimension 3"):
        codec.LatentQuantizer.from_json(json.dumps(values))


def test_pillow_files(mnist):
    _, (x_test, _) = mnist
    files, decoded = codec.pillow_files(x_test[:50], "PNG")
    assert np.array_equal(decoded, x_test[:50]), "PNG is lossless"
    assert 100 < np.mean([len(blob) for blob in files]) < 784
    jpeg_files, jpeg = codec.pillow_files(x_test[:50], "JPEG", quality=10)
    assert not np.array_equal(jpeg, x_test[:50])
    assert min(len(blob) for blob in jpeg_files) > 0
    with pytest.raises(ValueError, match="uint8"):
        codec.pillow_files(x_test[:5].astype(np.float32), "PNG")
    with pytest.raises(ValueError, match="quality for WEBP must be from 0 to 100, got 101"):
        codec.pillow_files(x_test[:5], "webp", quality=101)
    with pytest.raises(ValueError, match="quality only applies to JPEG and WEBP"):
        codec.pillow_files(x_test[:5], "PNG", quality=50)


@pytest.mark.parametrize(
    ("format", "options"),
    [
        ("JPEG", {"quality": 75}),
        ("JPEG", {"quality": 5, "optimize": True}),
        ("PNG", {"optimize": True}),
        ("WEBP", {"quality": 80}),
        ("WEBP", {"lossless": True}),
    ],
)
def test_file_parts_add_up_and_find_the_payload(mnist, format, options):
    _, (x_test, _) = mnist
    files, _ = codec.pillow_files(x_test[:20], format, **options)
    for blob in files:
        parts = codec.file_parts(blob)
        assert sum(parts.values()) == len(blob) and 0 < parts["payload"] < len(blob)
    blob, parts = files[0], codec.file_parts(files[0])
    container = len(blob) - parts["payload"]
    if format == "JPEG":  # the scan data runs to the end marker, and holds no marker but stuffed 0xFF00
        scan = blob[container - 2 : -2]
        assert blob[-2:] == b"\xff\xd9" and scan.count(b"\xff") == scan.count(b"\xff\x00")
    elif format == "PNG":  # the payload is raw deflate data: 28 rows of a filter byte and 28 pixels
        start = 8 + 25 + 8 + 2
        assert len(zlib.decompress(blob[start : start + parts["payload"]], wbits=-15)) == 28 * 29
    else:  # the payload starts right after the VP8 start code, or after the VP8L signature and size
        assert blob[23:26] == b"\x9d\x01\x2a" if not options.get("lossless") else blob[20] == 0x2F
        padding = int.from_bytes(blob[16:20], "little") & 1  # a chunk of odd length is padded by one byte
        assert container == (30 if not options.get("lossless") else 25) + padding


def test_restart_markers_stay_inside_the_payload(mnist):
    """A scan with restart markers (0xFFD0..0xFFD7) runs on past them, to the end marker: the container is the
    plain file's and the 6-byte restart interval segment."""
    _, (x_test, _) = mnist
    plain, _ = codec.pillow_files(x_test[:5], "JPEG", quality=50)
    with_restarts, _ = codec.pillow_files(x_test[:5], "JPEG", quality=50, restart_marker_rows=1)
    for blob, reference in zip(with_restarts, plain, strict=True):
        parts = codec.file_parts(blob)
        assert sum(parts.values()) == len(blob) and parts["restart interval"] == 6
        container = len(blob) - parts["payload"]
        assert container == len(reference) - codec.file_parts(reference)["payload"] + 6
        scan = blob[container - 2 : -2]
        assert blob[-2:] == b"\xff\xd9" and any(bytes([0xFF, 0xD0 + n]) in scan for n in range(8))


def test_the_container_does_not_depend_on_the_digit(mnist):
    _, (x_test, _) = mnist
    files, _ = codec.pillow_files(x_test[:20], "JPEG", quality=50)
    containers = set()
    for blob in files:
        payload = codec.file_parts(blob)["payload"]
        end = len(blob) - 2
        containers.add(blob[: end - payload] + blob[end:])
    assert len(containers) == 1, "JPEG's headers and tables are the same for every digit at one quality"
    payloads = {blob[len(next(iter(containers))) - 2 : -2] for blob in files}
    assert len(payloads) == 20


def test_file_parts_refuses_what_it_cannot_parse(mnist):
    _, (x_test, _) = mnist
    (blob,), _ = codec.pillow_files(x_test[:1], "JPEG", quality=50)
    with pytest.raises(codec.CodecError, match="JPEG: a scan runs to the end of the file"):
        codec.file_parts(blob[:-2])
    with pytest.raises(ValueError, match="not a JPEG, PNG or WebP file"):
        codec.file_parts(b"GIF89a" + bytes(20))
    with pytest.raises(TypeError, match="blob must be the bytes of one image file"):
        codec.file_parts("JPEG")
    (png,), _ = codec.pillow_files(x_test[:1], "PNG")
    with pytest.raises(codec.CodecError, match="PNG: the chunks do not add up"):
        codec.file_parts(png[:-5])


def test_mosaic_round_trip(mnist):
    _, (x_test, _) = mnist
    mosaic = codec.tile(x_test[:200], columns=20)
    assert mosaic.shape == (10 * 28, 20 * 28) and np.array_equal(mosaic[28:56, 56:84], x_test[22])
    assert np.array_equal(codec.untile(mosaic, columns=20), x_test[:200])
    blob, decoded = codec.pillow_mosaic(x_test[:200], "PNG", columns=20)
    assert np.array_equal(decoded, x_test[:200]), "PNG is lossless"
    one_file_each = np.mean([len(b) for b in codec.pillow_files(x_test[:200], "PNG")[0]])
    assert len(blob) / 200 < one_file_each, "one file shares its container among all digits"
    with pytest.raises(ValueError, match="do not fill rows of 30"):
        codec.tile(x_test[:200], columns=30)


def test_rate_distortion_rows(mnist, pca_codes):
    _, (x_test, _) = mnist
    row, decoded = codec.measure_pillow_files(x_test[:50], "jpeg", "quality 50", quality=50)
    assert (row["codec"], row["setting"]) == ("JPEG", "quality 50") and 10 < row["psnr"] < 60
    assert row["file bytes"] == pytest.approx(row["container bytes"] + row["payload bytes"])
    assert decoded.shape == (50, 28, 28) and decoded.dtype == np.uint8
    mosaic_row, mosaic = codec.measure_pillow_mosaic(x_test[:100], "WEBP", "quality 10", columns=10, quality=10)
    assert mosaic_row["codec"] == "WebP" and mosaic.shape == (100, 28, 28) and 10 < mosaic_row["psnr"] < 60
    train_codes, test_codes = pca_codes
    quantizer = codec.LatentQuantizer.fit(train_codes, 8)
    pca_back = PCA(n_components=20, random_state=0)
    pca_back.fit(preprocessing.flatten_images(preprocessing.scale_images(mnist[0][0][:5000])))
    originals = preprocessing.scale_images(x_test[:300])
    latent, rebuilt = codec.measure_latent_codec("PCA", quantizer, test_codes, pca_back.inverse_transform, originals)
    assert latent["setting"] == "20 x 8 bits" and latent["bytes"] == quantizer.payload_bytes == 20
    assert rebuilt.shape == (300, 28, 28) and 0 <= rebuilt.min() and rebuilt.max() <= 1
    assert latent["psnr"] > 15, "20 PCA numbers at 8 bits rebuild a recognisable digit"


@pytest.mark.parametrize(
    ("call", "error", "expected"),
    [
        (lambda q, c, x: codec.pillow_files(x, "XYZ"), ValueError, "format must be one Pillow can"),
        (lambda q, c, x: codec.pillow_files(x, 42), TypeError, "format must be a string"),
        (lambda q, c, x: codec.pillow_mosaic(x, "JPEG", 2, quality=500), ValueError, "quality for JPEG"),
        (lambda q, c, x: codec.LatentQuantizer.fit(with_one_nan(c), 4), ValueError, "training_codes contains 1 NaN"),
        (
            lambda q, c, x: codec.LatentQuantizer.fit(c[:1], 4),
            ValueError,
            "training_codes must have shape .* at least 2 rows",
        ),
        (
            lambda q, c, x: codec.LatentQuantizer.fit(c, 4, coverage=1.5),
            ValueError,
            r"coverage .*must be a finite number in \(0, 1\]",
        ),
        (
            lambda q, c, x: codec.LatentQuantizer.fit(c, 4, coverage=0),
            ValueError,
            r"coverage .*must be a finite number in \(0, 1\]",
        ),
        (lambda q, c, x: codec.LatentQuantizer(4, (1.0, 0.0), (0.0, 1.0)), ValueError, "high must be above low"),
        (lambda q, c, x: codec.LatentQuantizer(4, (0.0,), (1.0, 2.0)), ValueError, "low and high must be equally long"),
        (lambda q, c, x: q.encode(c[:0]), ValueError, "codes must have shape .* not empty"),
        (lambda q, c, x: q.accepts(b"\x25\x00"), TypeError, "encoded must be a list"),
        (lambda q, c, x: codec.tile(x, columns=0), ValueError, "columns must be at least 1"),
        (lambda q, c, x: codec.crc8(np.zeros(4, np.uint8)), ValueError, "rows must be a 2-D array"),
    ],
    ids=[
        "format-unknown",
        "format-not-str",
        "quality-500",
        "codes-nan",
        "codes-one-row",
        "coverage-1.5",
        "coverage-0",
        "ranges-backwards",
        "ranges-uneven",
        "codes-empty",
        "accepts-one-string",
        "tile-no-columns",
        "crc-one-row",
    ],
)
def test_codec_refuses_bad_arguments_by_name(mnist, pixel_codes, call, error, expected):
    (x_train, _), _ = mnist
    fitted, codes = pixel_codes
    with pytest.raises(error, match=expected):
        call(fitted, codes, x_train[:2])


def test_backwards_ranges_are_refused():
    backwards = json.dumps({"bits": 4, "low": [1.0, 0.0], "high": [0.0, 1.0]})
    with pytest.raises(codec.CodecError, match="high must be above low"):
        codec.LatentQuantizer.from_json(backwards)
