"""The checks of what public functions receive: one rule per kind of input, and messages that name the argument."""

import numbers

import numpy as np

IMAGE_SHAPE = (28, 28)
IMAGE_PIXELS = 28 * 28
# Pixels outside [0, 1] by more than this are refused (float32 rounding stays far below it).
RANGE_TOLERANCE = 1e-5


def images(array, name: str = "images", dtype: str = "float") -> np.ndarray:
    """``array`` as a NumPy array of one or more digit images, flat ``(n, 784)`` or ``(n, 28, 28)``.

    ``dtype="float"``: in [0, 1], what models and metrics take; ``"uint8"``: bytes 0..255, as stored; ``"any"``: either.
    """
    if not isinstance(array, np.ndarray | list | tuple):
        raise TypeError(f"{name} must be a NumPy array of images, got {type(array).__name__}.")
    array = np.asarray(array)
    allowed = {"float": "float", "uint8": "uint8", "any": "uint8 or float"}[dtype]
    is_bytes, is_float = array.dtype == np.uint8, np.issubdtype(array.dtype, np.floating)
    fits = array.ndim in (2, 3) and array.shape[1:] in (IMAGE_SHAPE, (IMAGE_PIXELS,))
    if not fits or not (is_bytes and dtype != "float" or is_float and dtype != "uint8"):
        raise ValueError(
            f"{name} must be {allowed} images of shape (n, 28, 28) or (n, 784)"
            + (" with pixels in [0, 1]" if dtype != "uint8" else "")
            + f"; got {array.dtype} with shape {array.shape}."
        )
    if len(array) == 0:
        raise ValueError(f"{name} is empty: pass at least one image.")
    if is_float:
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} contains NaN or infinity: every pixel must be a number in [0, 1].")
        low, high = float(array.min()), float(array.max())
        if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
            hint = " They look like bytes 0..255: divide by 255 first (preprocessing.scale_images)."
            raise ValueError(
                f"{name} must have pixels in [0, 1]; got values from {low:g} to {high:g}."
                + (hint if high > 1.5 else "")
            )
    return array


def integer(value, name: str, low: int, high: int | None = None, what: str = "") -> int:
    """``value`` if it is an integer from ``low`` to ``high`` (no upper end when None)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}.")
    if value < low or high is not None and value > high:
        span = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {span}{what}, got {value}.")
    return int(value)


def number(value, name: str, low: float = -np.inf, high: float = np.inf, low_open: bool = False) -> float:
    """``value`` if it is a finite real number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}.")
    if not np.isfinite(value) or (value <= low if low_open else value < low) or value > high:
        if np.isinf(high):
            rule = f"{'>' if low_open else '>='} {low:g}" if np.isfinite(low) else ""
        else:
            rule = f"in {'(' if low_open else '['}{low:g}, {high:g}]"
        raise ValueError(f"{name} must be a finite number {rule}, got {value!r}.".replace("  ", " "))
    return float(value)


def points(values, name: str, columns: int | str | None = None, rows: int = 1) -> np.ndarray:
    """``values`` as a float array of finite numbers: ``(n, columns)`` points (``"any"`` width), or 1-D if None."""
    shape_text = f"(n, {'d' if columns == 'any' else columns})" if columns else "(n,)"
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be numbers of shape {shape_text}, got {type(values).__name__}.") from error
    fits = array.ndim == 2 and columns in ("any", array.shape[1]) if columns else array.ndim == 1
    if not fits or len(array) < rows:
        least = f", with at least {rows} rows" if rows > 1 else ", not empty"
        raise ValueError(f"{name} must have shape {shape_text}{least}; got shape {array.shape}.")
    bad = int(np.sum(~np.isfinite(array)))
    if bad:
        raise ValueError(f"{name} contains {bad} NaN or infinite values: every value must be a finite number.")
    return array


def labelled(images_or_rows, labels) -> None:
    """Labels that fit the rows they label: a non-empty 1-D integer array of the same length."""
    if not isinstance(labels, np.ndarray) or labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError("labels must be a 1-D integer NumPy array.")
    if len(images_or_rows) != len(labels):
        raise ValueError(f"images and labels must have the same length, got {len(images_or_rows)} and {len(labels)}.")
    if len(labels) == 0:
        raise ValueError("labels is empty: there is nothing to take a subset of.")


def layer_sizes(units, name: str, length: int | None = None) -> tuple[int, ...]:
    """``units`` as a tuple of positive integers (layer widths), ``length`` long if given."""
    if not isinstance(units, tuple | list):
        raise TypeError(f"{name} must be a tuple of positive integers such as (512, 256), got {units!r}.")
    if length is not None and len(units) != length:
        raise ValueError(f"{name} must hold {length} positive integers, got {units!r}.")
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in units):
        raise ValueError(f"{name} must hold positive integers (layer sizes), got {units!r}.")
    return tuple(int(v) for v in units)
