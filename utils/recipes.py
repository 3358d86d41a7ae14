"""Every trained model of the series, how it is trained, and ``trained_model``: the one way a notebook gets it."""

from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np

from utils import config, metrics, models, preprocessing, saving, training, weights

# Notebook 08's noise: the strength, and the seeds of the fixed validation and test noise.
DENOISING_SIGMA = 0.5
VALIDATION_NOISE_SEED, TEST_NOISE_SEED = 2, 3
# The denoiser is wider than notebook 02's model; this width keeps its float16 weights under 5 MB.
DENOISER_HIDDEN_UNITS = (896, 448)
# Notebook 06's model: 25 epochs fit 10 min on 2 CPU cores; XLA is off, as its convolutions ran slower (`make bench`).
CONV_SETTINGS = {"epochs": 25, "jit_compile": False}
# Notebook 11's binary MNIST: the seeds of the fixed binarizations of the validation and test images.
VALIDATION_BINARIZATION_SEED, TEST_BINARIZATION_SEED = 4, 5


@dataclass(frozen=True)
class Recipe:
    """How one model of the series is built and trained (full mode), and on which backend it trains fastest."""

    name: str
    notebook: int  # the notebook that introduces the model; earlier notebooks never use it
    description: str
    build: Callable[[], keras.Model]
    settings: dict = field(default_factory=dict)
    denoising: bool = False
    binarized: bool = False  # trained and tested on binary images drawn from the grey levels (notebook 11)
    backend: str = "jax"

    def training_settings(self, quick: bool | None = None) -> training.TrainingSettings:
        """The settings of a full run; quick mode keeps only the model-specific changes that stay valid."""
        quick = config.quick_mode() if quick is None else quick
        changes = {key: value for key, value in self.settings.items() if not (quick and key == "epochs")}
        return training.default_settings(quick=quick, **changes)


class BinarizedImages(training.NoisyImages):
    """Batches of binary images drawn afresh every epoch, each pixel 1 with probability its grey level (notebook 11).

    Inputs and targets are the same draw, so the model learns binary images' probability; shuffled as ``NoisyImages``.
    """

    def __init__(self, grey: np.ndarray, batch_size: int, seed: int = config.SEED, **kwargs):
        super().__init__(grey, 0.0, batch_size, seed=seed, **kwargs)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        grey = self.clean[self.order[index * self.batch_size : (index + 1) * self.batch_size]]
        binary = preprocessing.binarize(grey, seed=[self.seed, self.epoch, index])
        return binary, binary


def _dense(latent_dim: int, hidden_units=models.DEFAULT_HIDDEN_UNITS) -> Callable[[], keras.Model]:
    return lambda: models.build_dense_autoencoder(latent_dim, hidden_units)[2]


def _variational(latent_dim: int) -> Callable[[], keras.Model]:
    return lambda: models.build_variational_autoencoder(latent_dim, seed=config.SEED)[2]


_ALL = [
    Recipe("dense_autoencoder_32d", 3, "notebook 02's dense autoencoder, trained as in notebook 03", _dense(32)),
    Recipe(
        "dense_autoencoder_32d_mse",
        3,
        "the same model and settings, trained on mean squared error (notebook 03's comparison)",
        _dense(32),
        {"loss": "mse"},
    ),
    Recipe("dense_autoencoder_16d", 7, "notebook 02's design with a 16-number code (notebook 07)", _dense(16)),
    Recipe("dense_autoencoder_64d", 7, "notebook 02's design with a 64-number code (notebook 07)", _dense(64)),
    Recipe(
        "conv_autoencoder_32d",
        6,
        "notebook 06's convolutional autoencoder",
        lambda: models.build_conv_autoencoder()[2],
        CONV_SETTINGS,
        backend="tensorflow",
    ),
    Recipe(
        "denoising_autoencoder_64d",
        8,
        f"notebook 08's denoiser: noisy inputs (sigma {DENOISING_SIGMA}, fresh every epoch), clean targets",
        _dense(64, DENOISER_HIDDEN_UNITS),
        {"epochs": 45},
        denoising=True,
    ),
    Recipe("variational_autoencoder_2d", 10, "notebook 10's VAE with a 2-number code", _variational(2)),
    Recipe("variational_autoencoder_32d", 10, "notebook 10's VAE with a 32-number code", _variational(32)),
    Recipe(
        "variational_autoencoder_32d_binarized",
        11,
        "notebook 10's 32-number VAE, trained on MNIST binarized afresh every epoch (notebook 11)",
        _variational(32),
        binarized=True,
    ),
]
RECIPES = {recipe.name: recipe for recipe in _ALL}


def get(name: str) -> Recipe:
    """The recipe called ``name``, with a clear error for an unknown one."""
    if name not in RECIPES:
        raise ValueError(f"unknown model {name!r}; the series' models are: {', '.join(RECIPES)}.")
    return RECIPES[name]


def test_inputs(recipe: Recipe, prepared: preprocessing.PreparedMnist) -> np.ndarray:
    """The test images as the model is fed them: with notebook 08's fixed noise, or notebook 11's fixed binarization."""
    if recipe.denoising:
        return preprocessing.add_gaussian_noise(prepared.x_test, DENOISING_SIGMA, seed=TEST_NOISE_SEED)
    if recipe.binarized:
        return preprocessing.binarize(prepared.x_test, seed=TEST_BINARIZATION_SEED)
    return prepared.x_test


def evaluate(model: keras.Model, recipe: Recipe, prepared: preprocessing.PreparedMnist) -> dict[str, float]:
    """Mean test MSE, PSNR and SSIM of ``model``, fed ``test_inputs``, against the clean (grey) test images."""
    rebuilt = model.predict(test_inputs(recipe, prepared), batch_size=1024, verbose=0)
    return metrics.summarize(metrics.reconstruction_metrics(prepared.x_test, np.clip(rebuilt, 0, 1)))


def train(recipe: Recipe, prepared: preprocessing.PreparedMnist, verbose: bool = True):
    """Seed, build and train ``recipe`` from scratch; returns ``(model, record)`` (nothing is saved)."""
    keras.utils.set_random_seed(config.SEED)
    model, settings = recipe.build(), recipe.training_settings()
    inputs, targets, validation = prepared.x_train, prepared.x_train, (prepared.x_val, prepared.x_val)
    if recipe.denoising:  # noisy inputs, fresh every epoch, and clean targets
        inputs, targets = training.NoisyImages(prepared.x_train, DENOISING_SIGMA, batch_size=settings.batch_size), None
        noisy_val = preprocessing.add_gaussian_noise(prepared.x_val, DENOISING_SIGMA, seed=VALIDATION_NOISE_SEED)
        validation = (noisy_val, prepared.x_val)
    elif recipe.binarized:  # binary inputs and targets: the loss is then the Bernoulli likelihood's
        inputs, targets = BinarizedImages(prepared.x_train, batch_size=settings.batch_size), None
        binary_val = preprocessing.binarize(prepared.x_val, seed=VALIDATION_BINARIZATION_SEED)
        validation = (binary_val, binary_val)
    return model, training.train_autoencoder(model, inputs, targets, validation, settings, verbose=verbose)


def trained_model(
    name: str, prepared: preprocessing.PreparedMnist | None = None, verbose: bool = True
) -> tuple[keras.Model, saving.TrainingRecord]:
    """The trained model ``name`` and its record: saved by a notebook, else shipped, else trained now.

    Shipped weights are skipped when ``AE_FROM_SCRATCH=1``; a model trained now is saved under ``outputs/models/``.
    """
    recipe = get(name)
    use_shipped = not config.from_scratch() and weights.entry(name) is not None
    saved = saving.load(name, recipe.build, "using the shipped weights instead" if use_shipped else "training it again")
    if saved is not None:
        return saved
    if use_shipped:
        keras.utils.set_random_seed(config.SEED)
        model = recipe.build()
        shipped = weights.load_into(model, name)
        if shipped is not None:
            record = saving.TrainingRecord(**shipped["training"])
            print(f"Loaded the shipped weights of {name} ({record.epochs_run} epochs, checked by sha256).")
            return model, record
    print(f"Training {name} now ({recipe.description}).")
    model, record = train(recipe, prepared or preprocessing.prepare_mnist(), verbose=verbose)
    saving.save(name, model, record)
    return model, record
