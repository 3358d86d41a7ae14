"""The series' Keras models as notebooks 02, 06 and 10 write them, each built as ``(encoder, decoder, autoencoder)``."""

import hashlib
import json
import re

import keras
import numpy as np
from keras import layers, ops

from utils import checks
from utils.checks import IMAGE_PIXELS

DEFAULT_LATENT_DIM = 32
DEFAULT_HIDDEN_UNITS = (512, 256)


def _dense_halves(latent_dim: int, hidden_units, code_width: int, names: tuple[str, str, str]):
    checks.integer(latent_dim, "latent_dim", 1, IMAGE_PIXELS)
    hidden_units = checks.layer_sizes(hidden_units, "hidden_units")
    encoder_name, code_name, decoder_name = names
    encoder = keras.Sequential(
        [keras.Input(shape=(IMAGE_PIXELS,))]
        + [layers.Dense(units, activation="relu") for units in hidden_units]
        + [layers.Dense(code_width, name=code_name)],
        name=encoder_name,
    )
    decoder = keras.Sequential(
        [keras.Input(shape=(latent_dim,))]
        + [layers.Dense(units, activation="relu") for units in reversed(hidden_units)]
        + [layers.Dense(IMAGE_PIXELS, activation="sigmoid", dtype="float32", name="pixels")],
        name=decoder_name,
    )
    return encoder, decoder


def build_dense_autoencoder(latent_dim: int = DEFAULT_LATENT_DIM, hidden_units=DEFAULT_HIDDEN_UNITS):
    """Notebook 02's model: 784 pixels through ``hidden_units`` (ReLU) to a linear code, mirrored back."""
    encoder, decoder = _dense_halves(latent_dim, hidden_units, latent_dim, ("encoder", "code", "decoder"))
    return encoder, decoder, keras.Sequential([encoder, decoder], name="autoencoder")


def build_conv_autoencoder(latent_dim: int = DEFAULT_LATENT_DIM, filters: tuple[int, int] = (32, 64)):
    """Notebook 06's model: 784 flat pixels through two stride-2 ``Conv2D`` to 7x7, a ``Dense`` code, and back."""
    checks.integer(latent_dim, "latent_dim", 1, IMAGE_PIXELS)
    first, second = checks.layer_sizes(filters, "filters", length=2)
    encoder = keras.Sequential(
        [keras.Input(shape=(IMAGE_PIXELS,)), layers.Reshape((28, 28, 1))]
        + [layers.Conv2D(count, 3, strides=2, padding="same", activation="relu") for count in (first, second)]
        + [layers.Flatten(), layers.Dense(latent_dim, name="code")],
        name="conv_encoder",
    )
    decoder = keras.Sequential(
        [keras.Input(shape=(latent_dim,)), layers.Dense(7 * 7 * second, activation="relu")]
        + [layers.Reshape((7, 7, second))]
        + [layers.Conv2DTranspose(count, 3, strides=2, padding="same", activation="relu") for count in (second, first)]
        + [layers.Conv2D(1, 3, padding="same", activation="sigmoid", dtype="float32"), layers.Flatten(name="pixels")],
        name="conv_decoder",
    )
    return encoder, decoder, keras.Sequential([encoder, decoder], name="conv_autoencoder")


@keras.saving.register_keras_serializable(package="ae_mnist")
class GaussianSampling(layers.Layer):
    """Split ``[mean, log_variance]`` into a sampled code, and add the KL term to the model's loss (notebook 10).

    The KL divergence to a standard normal prior, summed over the code and averaged over the batch, is divided by
    ``pixels`` to match Keras's per-pixel mean BCE. At inference it returns the mean: reconstructions are deterministic.
    """

    def __init__(self, pixels: int = IMAGE_PIXELS, kl_weight: float = 1.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.pixels, self.kl_weight, self.seed = pixels, kl_weight, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, posterior, training=None):
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


def build_variational_autoencoder(latent_dim: int = 2, hidden_units=DEFAULT_HIDDEN_UNITS, seed: int | None = None):
    """Notebook 10's VAE: the encoder outputs ``[mean, log_variance]``, ``GaussianSampling`` draws the code."""
    names = ("vae_encoder", "posterior", "vae_decoder")
    encoder, decoder = _dense_halves(latent_dim, hidden_units, 2 * latent_dim, names)
    vae = keras.Sequential([encoder, GaussianSampling(seed=seed, name="sampling"), decoder], name="vae")
    return encoder, decoder, vae


def split_autoencoder(autoencoder: keras.Sequential) -> tuple[keras.Sequential, keras.Sequential]:
    """The ``(encoder, decoder)`` inside an autoencoder built by this module (also after loading)."""
    return autoencoder.layers[0], autoencoder.layers[-1]


def _without_generated_names(node, class_name: str = ""):
    """A copy of a config tree with Keras's numbered default names (``dense_3``) reduced to ``dense``."""
    if isinstance(node, list):
        return [_without_generated_names(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "class_name" in node and "config" in node:
        kept = {key: value for key, value in node.items() if key not in ("module", "registered_name", "build_config")}
        return kept | {"config": _without_generated_names(node["config"], node["class_name"])}
    cleaned = {key: _without_generated_names(value) for key, value in node.items() if key != "build_config"}
    # Keras's default name for a class is its snake case, e.g. Conv2DTranspose -> conv2d_transpose.
    default = re.sub("([a-z])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", class_name)).lower()
    name = cleaned.get("name")
    if class_name and isinstance(name, str) and re.fullmatch(re.escape(default) + r"(_\d+)?", name):
        cleaned["name"] = default
    return cleaned


def architecture(model: keras.Model) -> dict:
    """``model``'s config with Keras's numbered default layer names removed, so two builds compare equal."""
    return _without_generated_names({"class_name": type(model).__name__, "config": model.get_config()})


def architecture_fingerprint(model: keras.Model) -> str:
    """A sha256 of ``architecture(model)``: equal for every build of the same design."""
    return hashlib.sha256(json.dumps(architecture(model), sort_keys=True).encode()).hexdigest()


def layer_multiply_adds(layer: keras.layers.Layer) -> int:
    """Multiply-adds of one forward pass of one image through ``layer`` (0 for layers without a kernel)."""
    if isinstance(layer, layers.Dense):
        return int(np.prod(layer.kernel.shape))
    if isinstance(layer, layers.Conv2D | layers.Conv2DTranspose):
        # A Conv2D does kernel-size work per output position; a transposed one per input position.
        positions = layer.output.shape[1:3] if isinstance(layer, layers.Conv2D) else layer.input.shape[1:3]
        return int(np.prod(layer.kernel.shape)) * int(np.prod(positions))
    return 0


def count_multiply_adds(model: keras.Model) -> int:
    """Multiply-adds of one forward pass through the Dense and convolution layers of ``model`` (nested too)."""
    return sum(
        count_multiply_adds(layer) if isinstance(layer, keras.Model) else layer_multiply_adds(layer)
        for layer in model.layers
    )
