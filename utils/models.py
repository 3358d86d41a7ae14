"""Keras ``Sequential`` encoders and decoders used across the series, plus the reference recipes."""

from __future__ import annotations

import keras
from keras import layers

from utils.data import IMAGE_PIXELS

DEFAULT_LATENT_DIM = 32
DEFAULT_HIDDEN_UNITS = (512, 256)


def _check_latent_dim(latent_dim: int) -> None:
    if not isinstance(latent_dim, int) or not 1 <= latent_dim <= IMAGE_PIXELS:
        raise ValueError(f"latent_dim must be an integer from 1 to {IMAGE_PIXELS}, got {latent_dim!r}.")


def build_dense_autoencoder(
    latent_dim: int = DEFAULT_LATENT_DIM, hidden_units: tuple[int, ...] = DEFAULT_HIDDEN_UNITS
) -> tuple[keras.Sequential, keras.Sequential, keras.Sequential]:
    """The series' model (notebook 02): ``(encoder, decoder, autoencoder)``, all ``Sequential``.

    The encoder maps 784 pixels through ``hidden_units`` (ReLU) to a linear code of ``latent_dim``;
    the decoder mirrors it and ends in a sigmoid, so outputs are pixels in [0, 1].
    """
    _check_latent_dim(latent_dim)
    encoder = keras.Sequential(
        [keras.Input(shape=(IMAGE_PIXELS,))]
        + [layers.Dense(units, activation="relu") for units in hidden_units]
        + [layers.Dense(latent_dim, name="code")],
        name="encoder",
    )
    decoder = keras.Sequential(
        [keras.Input(shape=(latent_dim,))]
        + [layers.Dense(units, activation="relu") for units in reversed(hidden_units)]
        + [layers.Dense(IMAGE_PIXELS, activation="sigmoid", dtype="float32", name="pixels")],
        name="decoder",
    )
    autoencoder = keras.Sequential([encoder, decoder], name="autoencoder")
    return encoder, decoder, autoencoder


def build_keras_blog_autoencoder(latent_dim: int = DEFAULT_LATENT_DIM) -> keras.Sequential:
    """Reference recipe (b): the Keras blog's shallow 784-32-784 autoencoder."""
    _check_latent_dim(latent_dim)
    return keras.Sequential(
        [
            keras.Input(shape=(IMAGE_PIXELS,)),
            layers.Dense(latent_dim, activation="relu"),
            layers.Dense(IMAGE_PIXELS, activation="sigmoid"),
        ],
        name="keras_blog_shallow",
    )


def build_keras_blog_deep_autoencoder() -> keras.Sequential:
    """Reference recipe (c): the Keras blog's deep 784-128-64-32-64-128-784 autoencoder."""
    return keras.Sequential(
        [keras.Input(shape=(IMAGE_PIXELS,))]
        + [layers.Dense(units, activation="relu") for units in (128, 64, 32, 64, 128)]
        + [layers.Dense(IMAGE_PIXELS, activation="sigmoid")],
        name="keras_blog_deep",
    )


def split_autoencoder(autoencoder: keras.Sequential) -> tuple[keras.Sequential, keras.Sequential]:
    """The ``(encoder, decoder)`` inside an autoencoder built by this module (also after loading)."""
    encoder, decoder = autoencoder.layers
    return encoder, decoder


def count_multiply_adds(model: keras.Model) -> int:
    """Multiply-adds of one forward pass through the Dense layers of ``model`` (nested models included)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_multiply_adds(layer)
        elif isinstance(layer, layers.Dense):
            total += int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
    return total
