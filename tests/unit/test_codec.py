"""The latent codec and the Pillow round trip, on real MNIST digits and PCA codes of them."""

from __future__ import annotations

import json

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


@pytest.mark.parametrize(("bits", "expected"), [(8, 2 + 20), (4, 2 + 10), (3, 2 + 8), (1, 2 + 3)])
def test_byte_counts_are_real(pca_codes, bits, expected):
    train_codes, test_codes = pca_codes
    quantizer = codec.LatentQuantizer.fit(train_codes, bits)
    assert quantizer.bytes_per_code == expected
    assert {len(blob) for blob in quantizer.encode(test_codes)} == {expected}


def test_more_bits_means_smaller_error(pca_codes):
    train_codes, test_codes = pca_codes
    errors = []
    for bits in (2, 4, 6, 8):
        quantizer = codec.LatentQuantizer.fit(train_codes, bits)
        errors.append(float(np.mean((quantizer.decode(quantizer.encode(test_codes)) - test_codes) ** 2)))
    assert errors == sorted(errors, reverse=True) and errors[-1] < errors[0] / 50


def test_corrupt_bytes_are_refused(pca_codes):
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
    with pytest.raises(codec.CodecError, match="expected bytes"):
        quantizer.decode(["not bytes"])
    assert quantizer.decode_levels([]).shape == (0, 20)


def test_save_and_load(tmp_path, pca_codes):
    train_codes, test_codes = pca_codes
    quantizer = codec.LatentQuantizer.fit(train_codes, 6)
    quantizer.save(tmp_path / "ranges.json")
    loaded = codec.LatentQuantizer.load(tmp_path / "ranges.json")
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


def test_damaged_codec_file_is_refused(tmp_path, pca_codes):
    train_codes, _ = pca_codes
    path = tmp_path / "ranges.json"
    codec.LatentQuantizer.fit(train_codes, 6).save(path)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(codec.CodecError, match="ranges.json is not a valid codec file"):
        codec.LatentQuantizer.load(path)
    values = json.loads(text)
    values["low"][3], values["high"][3] = values["high"][3], values["low"][3]
    path.write_text(json.dumps(values))
    with pytest.raises(codec.CodecError, match="high must be above low in every dimension; dimension 3"):
        codec.LatentQuantizer.load(path)


def test_pillow_round_trip(mnist):
    _, (x_test, _) = mnist
    sizes, decoded = codec.pillow_round_trip(x_test[:50], "PNG")
    assert np.array_equal(decoded, x_test[:50]), "PNG is lossless"
    assert 100 < sizes.mean() < 784
    jpeg_sizes, jpeg = codec.pillow_round_trip(x_test[:50], "JPEG", quality=10)
    assert not np.array_equal(jpeg, x_test[:50])
    assert jpeg_sizes.min() > 0
    with pytest.raises(ValueError, match="uint8"):
        codec.pillow_round_trip(x_test[:5].astype(np.float32), "PNG")
    with pytest.raises(ValueError, match="quality for WEBP must be from 0 to 100, got 101"):
        codec.pillow_round_trip(x_test[:5], "webp", quality=101)
    with pytest.raises(ValueError, match="quality only applies to JPEG and WEBP"):
        codec.pillow_round_trip(x_test[:5], "PNG", quality=50)


def test_rate_distortion_rows(mnist, pca_codes):
    _, (x_test, _) = mnist
    point, decoded = codec.measure_pillow_codec(x_test[:50], "jpeg", "quality 50", quality=50)
    assert (point["codec"], point["setting"]) == ("JPEG", "quality 50")
    assert point["ratio"] == pytest.approx(784 / point["bytes"]) and 10 < point["psnr"] < 60
    assert decoded.shape == (50, 28, 28) and decoded.dtype == np.uint8
    train_codes, test_codes = pca_codes
    quantizer = codec.LatentQuantizer.fit(train_codes, 8)
    pca_back = PCA(n_components=20, random_state=0)
    pca_back.fit(preprocessing.flatten_images(preprocessing.scale_images(mnist[0][0][:5000])))
    originals = preprocessing.scale_images(x_test[:300])
    row, rebuilt = codec.measure_latent_codec(
        "PCA", quantizer, test_codes, pca_back.inverse_transform, originals
    )
    assert row["setting"] == "20 x 8 bits" and row["bytes"] == quantizer.bytes_per_code == 22
    assert rebuilt.shape == (300, 28, 28) and 0 <= rebuilt.min() and rebuilt.max() <= 1
    assert row["psnr"] > 15, "20 PCA numbers at 8 bits rebuild a recognisable digit"


@pytest.mark.parametrize(
    ("call", "error", "expected"),
    [
        (lambda q, c, x: codec.pillow_round_trip(x, "XYZ"), ValueError, "format must be one Pillow can"),
        (lambda q, c, x: codec.pillow_round_trip(x, 42), TypeError, "format must be a string"),
        (lambda q, c, x: codec.pillow_round_trip(x, "JPEG", quality=500), ValueError, "quality for JPEG"),
        (
            lambda q, c, x: codec.LatentQuantizer.fit(with_one_nan(c), 4),
            ValueError,
            "training_codes contains 1 NaN",
        ),
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
        (
            lambda q, c, x: codec.LatentQuantizer(4, (1.0, 0.0), (0.0, 1.0)),
            ValueError,
            "high must be above low",
        ),
        (
            lambda q, c, x: codec.LatentQuantizer(4, (0.0,), (1.0, 2.0)),
            ValueError,
            "low and high must be equally long",
        ),
        (lambda q, c, x: q.encode(c[:0]), ValueError, "codes must have shape .* not empty"),
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
    ],
)
def test_codec_refuses_bad_arguments_by_name(mnist, pixel_codes, call, error, expected):
    (x_train, _), _ = mnist
    fitted, codes = pixel_codes
    with pytest.raises(error, match=expected):
        call(fitted, codes, x_train[:2])


def test_a_backwards_codec_file_is_refused(tmp_path):
    backwards = tmp_path / "backwards.json"
    backwards.write_text(json.dumps({"bits": 4, "low": [1.0, 0.0], "high": [0.0, 1.0]}))
    with pytest.raises(codec.CodecError, match="high must be above low"):
        codec.LatentQuantizer.load(backwards)
