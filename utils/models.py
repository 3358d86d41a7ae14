"""Keras ``Sequential`` encoders and decoders used across the series, plus the reference recipes."""

from __future__ import annotations

import hashlib
import json
import numbers
import re

import keras
import numpy as np
from keras import layers

from utils.data import IMAGE_PIXELS

DEFAULT_LATENT_DIM = 32
DEFAULT_HIDDEN_UNITS = (512, 256)


def _check_latent_dim(latent_dim: int) -> None:
    if not isinstance(latent_dim, int) or not 1 <= latent_dim <= IMAGE_PIXELS:
        raise ValueError(f"latent_dim must be an integer from 1 to {IMAGE_PIXELS}, got {latent_dim!r}.")


def _check_units(units: tuple[int, ...], name: str, length: int | None = None) -> None:
    """Raise unless ``units`` is a tuple (or list) of positive integers, ``length`` long if given."""
    if not isinstance(units, tuple | list):
        raise TypeError(f"{name} must be a tuple of positive integers such as (512, 256), got {units!r}.")
    if length is not None and len(units) != length:
        raise ValueError(f"{name} must hold {length} positive integers, got {units!r}.")
    for value in units:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must hold positive integers (layer sizes), got {units!r}.")


def build_dense_autoencoder(
    latent_dim: int = DEFAULT_LATENT_DIM, hidden_units: tuple[int, ...] = DEFAULT_HIDDEN_UNITS
) -> tuple[keras.Sequential, keras.Sequential, keras.Sequential]:
    """The series' model (notebook 02): ``(encoder, decoder, autoencoder)``, all ``Sequential``.

    The encoder maps 784 pixels through ``hidden_units`` (ReLU) to a linear code of ``latent_dim``;
    the decoder mirrors it and ends in a sigmoid, so outputs are pixels in [0, 1].
    """
    _check_latent_dim(latent_dim)
    _check_units(hidden_units, "hidden_units")
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
    return autoencoder.layers[0], autoencoder.layers[-1]


def _snake_case(class_name: str) -> str:
    """Keras's default layer name for a class, e.g. ``Conv2DTranspose`` -> ``conv2d_transpose``."""
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _without_generated_names(node, class_name: str | None = None):
    """A copy of a config tree with Keras's numbered default names (``dense_3``) reduced to ``dense``."""
    if isinstance(node, list):
        return [_without_generated_names(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "class_name" in node and "config" in node:
        kept = {key: value for key, value in node.items() if key not in ("module", "registered_name")}
        kept["config"] = _without_generated_names(node["config"], node["class_name"])
        return kept
    cleaned = {key: _without_generated_names(value) for key, value in node.items() if key != "build_config"}
    name = cleaned.get("name")
    if (
        class_name
        and isinstance(name, str)
        and re.fullmatch(re.escape(_snake_case(class_name)) + r"(_\d+)?", name)
    ):
        cleaned["name"] = _snake_case(class_name)
    return cleaned


def architecture(model: keras.Model) -> dict:
    """``model``'s config with Keras's numbered default layer names removed, so two builds compare equal."""
    return _without_generated_names({"class_name": type(model).__name__, "config": model.get_config()})


def same_architecture(model: keras.Model, reference: keras.Model) -> bool:
    """True when two models have the same layers, sizes and settings (default layer names ignored)."""
    return architecture(model) == architecture(reference)


def architecture_fingerprint(model: keras.Model) -> str:
    """A sha256 of ``architecture(model)``: equal for every build of the same design."""
    return hashlib.sha256(json.dumps(architecture(model), sort_keys=True).encode()).hexdigest()


def layer_multiply_adds(layer: keras.layers.Layer) -> int:
    """Multiply-adds of one forward pass of one image through ``layer`` (0 for layers without a kernel)."""
    if isinstance(layer, layers.Dense):
        return int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
    if isinstance(layer, layers.Conv2D | layers.Conv2DTranspose):
        kernel = int(np.prod(layer.kernel.shape))
        # A Conv2D does kernel-size work per output position; a transposed one per input position.
        positions = layer.output.shape[1:3] if isinstance(layer, layers.Conv2D) else layer.input.shape[1:3]
        return kernel * int(np.prod(positions))
    return 0


def count_multiply_adds(model: keras.Model) -> int:
    """Multiply-adds of one forward pass through the Dense and convolution layers of ``model`` (nested too)."""
    return sum(
        count_multiply_adds(layer) if isinstance(layer, keras.Model) else layer_multiply_adds(layer)
        for layer in model.layers
    )


def build_conv_autoencoder(
    latent_dim: int = DEFAULT_LATENT_DIM, filters: tuple[int, int] = (32, 64)
) -> tuple[keras.Sequential, keras.Sequential, keras.Sequential]:
    """Notebook 09's convolutional autoencoder: ``(encoder, decoder, autoencoder)``, all ``Sequential``.

    Two stride-2 ``Conv2D`` layers take 28x28 down to 7x7, a ``Dense`` layer makes the code; the decoder
    mirrors it with ``Conv2DTranspose`` layers. Inputs and outputs are flat 784-pixel vectors, like the dense model.
    """
    _check_latent_dim(latent_dim)
    _check_units(filters, "filters", length=2)
    first, second = filters
    encoder = keras.Sequential(
        [
            keras.Input(shape=(IMAGE_PIXELS,)),
            layers.Reshape((28, 28, 1)),
            layers.Conv2D(first, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2D(second, 3, strides=2, padding="same", activation="relu"),
            layers.Flatten(),
            layers.Dense(latent_dim, name="code"),
        ],
        name="conv_encoder",
    )
    decoder = keras.Sequential(
        [
            keras.Input(shape=(latent_dim,)),
            layers.Dense(7 * 7 * second, activation="relu"),
            layers.Reshape((7, 7, second)),
            layers.Conv2DTranspose(second, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2DTranspose(first, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2D(1, 3, padding="same", activation="sigmoid", dtype="float32"),
            layers.Flatten(name="pixels"),
        ],
        name="conv_decoder",
    )
    return encoder, decoder, keras.Sequential([encoder, decoder], name="conv_autoencoder")


@keras.saving.register_keras_serializable(package="ae_mnist")
class GaussianSampling(layers.Layer):
    """Split ``[mean, log_variance]`` into a sampled code, and add the KL term to the model's loss.

    The KL divergence to a standard normal prior is summed over the code and averaged over the batch,
    then divided by ``pixels`` so that it is on the same per-pixel scale as Keras's mean BCE.
    At inference (``training=False``) it returns the mean, so reconstructions are deterministic.
    """

    def __init__(self, pixels: int = IMAGE_PIXELS, kl_weight: float = 1.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.pixels, self.kl_weight, self.seed = pixels, kl_weight, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, posterior, training=None):
        from keras import ops

        mean, log_variance = ops.split(posterior, 2, axis=-1)
        kl = -0.5 * ops.sum(1 + log_variance - ops.square(mean) - ops.exp(log_variance), axis=-1)
        self.add_loss(self.kl_weight * ops.mean(kl) / self.pixels)
        if not training:
            return mean
        noise = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_variance) * noise

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // 2)

    def get_config(self):
        return {**super().get_config(), "pixels": self.pixels, "kl_weight": self.kl_weight, "seed": self.seed}


def build_variational_autoencoder(
    latent_dim: int = 2, hidden_units: tuple[int, ...] = DEFAULT_HIDDEN_UNITS, seed: int | None = None
) -> tuple[keras.Sequential, keras.Sequential, keras.Sequential]:
    """Notebook 10's VAE: ``(encoder, decoder, vae)``; the encoder outputs ``[mean, log_variance]``."""
    _check_latent_dim(latent_dim)
    _check_units(hidden_units, "hidden_units")
    encoder = keras.Sequential(
        [keras.Input(shape=(IMAGE_PIXELS,))]
        + [layers.Dense(units, activation="relu") for units in hidden_units]
        + [layers.Dense(2 * latent_dim, name="posterior")],
        name="vae_encoder",
    )
    decoder = keras.Sequential(
        [keras.Input(shape=(latent_dim,))]
        + [layers.Dense(units, activation="relu") for units in reversed(hidden_units)]
        + [layers.Dense(IMAGE_PIXELS, activation="sigmoid", dtype="float32", name="pixels")],
        name="vae_decoder",
    )
    vae = keras.Sequential([encoder, GaussianSampling(seed=seed, name="sampling"), decoder], name="vae")
    return encoder, decoder, vae
