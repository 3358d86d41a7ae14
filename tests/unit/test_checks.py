"""The argument checks on real digits: what each rule accepts, and messages that name the argument and the rule."""

from __future__ import annotations

import numpy as np
import pytest

from utils import checks


@pytest.fixture(scope="module")
def digits(mnist):
    """100 real training digits as stored (uint8) and scaled to [0, 1]."""
    (x_train, y_train), _ = mnist
    return x_train[:100], (x_train[:100] / np.float32(255)).astype(np.float32), y_train[:100]


def test_images_accepts_both_layouts_and_both_kinds(digits):
    stored, scaled, _ = digits
    assert checks.images(scaled) is scaled
    assert checks.images(scaled.reshape(100, 784)).shape == (100, 784)
    assert checks.images(stored, dtype="uint8") is stored
    assert checks.images(stored, dtype="any") is stored and checks.images(scaled, dtype="any") is scaled
    assert checks.images(scaled[:3].tolist()).shape == (3, 28, 28), "a list of images is an array too"


@pytest.mark.parametrize(
    ("make", "dtype", "error", "expected"),
    [
        (lambda s, f: "digits", "float", TypeError, "pictures must be a NumPy array of images, got str"),
        (lambda s, f: s, "float", ValueError, r"pictures must be float images .* with pixels in \[0, 1\]; got uint8"),
        (
            lambda s, f: f,
            "uint8",
            ValueError,
            r"pictures must be uint8 images of shape \(n, 28, 28\) or \(n, 784\); got float32",
        ),
        (lambda s, f: f[:, :20], "any", ValueError, r"got float32 with shape \(100, 20, 28\)"),
        (lambda s, f: f[:0], "float", ValueError, "pictures is empty: pass at least one image"),
        (lambda s, f: np.where(f > 0.5, np.nan, f), "float", ValueError, "pictures contains NaN or infinity"),
        (
            lambda s, f: f * 255,
            "float",
            ValueError,
            r"got values from 0 to 255\. They look like bytes 0\.\.255: divide by 255 first",
        ),
        (
            lambda s, f: f - 0.5,
            "any",
            ValueError,
            r"pictures must have pixels in \[0, 1\]; got values from -0.5 to 0.5\.$",
        ),
    ],
    ids=["not-an-array", "bytes-for-floats", "floats-for-bytes", "shape", "empty", "nan", "0-255", "shifted"],
)
def test_images_refuses_by_name(digits, make, dtype, error, expected):
    stored, scaled, _ = digits
    with pytest.raises(error, match=expected):
        checks.images(make(stored, scaled), "pictures", dtype=dtype)


@pytest.mark.parametrize(
    ("value", "error", "expected"),
    [
        (True, TypeError, "epochs must be an integer, got bool True"),
        (2.0, TypeError, "epochs must be an integer, got float 2.0"),
        ("3", TypeError, "epochs must be an integer, got str '3'"),
        (0, ValueError, "epochs must be from 1 to 100 passes over the data, got 0"),
        (101, ValueError, "epochs must be from 1 to 100 passes over the data, got 101"),
    ],
)
def test_integer_refuses_by_name(value, error, expected):
    with pytest.raises(error, match=f"^{expected}.$"):
        checks.integer(value, "epochs", 1, 100, " passes over the data")


def test_integer_and_number_accept_their_range():
    assert checks.integer(np.int64(7), "n", 1) == 7 and isinstance(checks.integer(np.int64(7), "n", 1), int)
    assert checks.number(0, "sigma", low=0) == 0.0
    assert checks.number(1, "coverage", 0, 1, low_open=True) == 1.0


@pytest.mark.parametrize(
    ("value", "bounds", "error", "expected"),
    [
        (np.inf, {"low": 0}, ValueError, "sigma must be a finite number >= 0, got inf."),
        (np.nan, {"low": 0}, ValueError, "sigma must be a finite number >= 0, got nan."),
        (-1, {"low": 0}, ValueError, "sigma must be a finite number >= 0, got -1."),
        (0, {"low": 0, "low_open": True}, ValueError, "sigma must be a finite number > 0, got 0."),
        (1.5, {"low": 0, "high": 1, "low_open": True}, ValueError, "sigma must be a finite number in (0, 1], got 1.5."),
        ("0.5", {"low": 0}, TypeError, "sigma must be a number, got str '0.5'."),
        (False, {"low": 0}, TypeError, "sigma must be a number, got bool False."),
    ],
)
def test_number_refuses_by_name(value, bounds, error, expected):
    with pytest.raises(error) as raised:
        checks.number(value, "sigma", **bounds)
    assert str(raised.value) == expected


def test_points_checks_shape_and_finiteness(digits):
    _, scaled, _ = digits
    codes = scaled.reshape(100, 784)[:, ::49]  # 16 real pixel values per digit
    assert checks.points(codes, "codes", 16).dtype == np.float64
    assert checks.points(codes, "codes", "any", rows=2).shape == (100, 16)
    assert checks.points(codes[:, 0], "values").shape == (100,)
    with pytest.raises(ValueError, match=r"codes must have shape \(n, 8\), not empty; got shape \(100, 16\)"):
        checks.points(codes, "codes", 8)
    with pytest.raises(ValueError, match=r"codes must have shape \(n, d\), with at least 2 rows; got shape \(1, 16\)"):
        checks.points(codes[:1], "codes", "any", rows=2)
    poisoned = codes.copy()
    poisoned[[3, 5], 2] = np.inf
    with pytest.raises(ValueError, match="codes contains 2 NaN or infinite values"):
        checks.points(poisoned, "codes", 16)
    with pytest.raises(TypeError, match=r"codes must be numbers of shape \(n, 16\), got list"):
        checks.points([["a"] * 16], "codes", 16)


def test_labelled_wants_one_integer_label_per_row(digits):
    _, scaled, labels = digits
    checks.labelled(scaled, labels)
    with pytest.raises(ValueError, match="labels must be a 1-D integer NumPy array"):
        checks.labelled(scaled, labels.astype(np.float32))
    with pytest.raises(ValueError, match="labels must be a 1-D integer NumPy array"):
        checks.labelled(scaled, labels.tolist())
    with pytest.raises(ValueError, match="images and labels must have the same length, got 100 and 99"):
        checks.labelled(scaled, labels[:99])
    with pytest.raises(ValueError, match="labels is empty"):
        checks.labelled(scaled[:0], labels[:0])


@pytest.mark.parametrize(
    ("units", "length", "error", "expected"),
    [
        (512, None, TypeError, "units must be a tuple of positive integers such as (512, 256), got 512."),
        ((512, 0), None, ValueError, "units must hold positive integers (layer sizes), got (512, 0)."),
        ((512, 2.5), None, ValueError, "units must hold positive integers (layer sizes), got (512, 2.5)."),
        ((512, True), None, ValueError, "units must hold positive integers (layer sizes), got (512, True)."),
        ((32,), 2, ValueError, "units must hold 2 positive integers, got (32,)."),
    ],
)
def test_layer_sizes_refuses_by_name(units, length, error, expected):
    with pytest.raises(error) as raised:
        checks.layer_sizes(units, "units", length)
    assert str(raised.value) == expected


def test_layer_sizes_gives_a_tuple_of_ints():
    assert checks.layer_sizes([np.int32(64), 32], "units") == (64, 32)
