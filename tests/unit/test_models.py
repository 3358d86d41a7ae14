"""The series' models on real digits: shapes, parameters, multiply-adds, the VAE's sampling layer, and architectures."""

from __future__ import annotations

import ast
import inspect
import textwrap

import keras
import numpy as np
import pytest

from utils import config, models, preprocessing


@pytest.fixture(scope="module")
def digits(mnist):
    """500 real test digits, stratified, flat and in [0, 1]."""
    (_, _), (x_test, y_test) = mnist
    images, labels = preprocessing.stratified_subset(x_test, y_test, 500, seed=0)
    return preprocessing.flatten_images(preprocessing.scale_images(images)), labels


def test_dense_autoencoder_shapes_and_parameters(digits):
    images, _ = digits
    keras.utils.set_random_seed(config.SEED)
    encoder, decoder, autoencoder = models.build_dense_autoencoder(latent_dim=16)
    codes = encoder(images[:8])
    assert tuple(codes.shape) == (8, 16)
    output = np.asarray(decoder(codes))
    assert output.shape == (8, 784) and output.min() >= 0 and output.max() <= 1
    expected = (784 * 512 + 512) + (512 * 256 + 256) + (256 * 16 + 16)
    assert encoder.count_params() == expected
    assert autoencoder.count_params() == encoder.count_params() + decoder.count_params()
    assert models.split_autoencoder(autoencoder) == (encoder, decoder)
    assert models.count_multiply_adds(autoencoder) == 2 * (784 * 512 + 512 * 256) + 2 * 256 * 16


def test_same_seed_gives_same_model(digits):
    images, _ = digits
    outputs = []
    for _ in range(2):
        keras.utils.set_random_seed(config.SEED)
        _, _, autoencoder = models.build_dense_autoencoder()
        outputs.append(np.asarray(autoencoder(images[:4])))
    assert np.array_equal(outputs[0], outputs[1])


def test_conv_autoencoder_shapes(digits):
    images, _ = digits
    keras.utils.set_random_seed(config.SEED)
    encoder, decoder, autoencoder = models.build_conv_autoencoder(latent_dim=32)
    assert tuple(encoder(images[:4]).shape) == (4, 32)
    output = np.asarray(autoencoder(images[:4]))
    assert output.shape == (4, 784) and 0 <= output.min() and output.max() <= 1
    # conv 1->32 on 14x14 outputs, conv 32->64 on 7x7, dense 3136->32, dense 32->3136,
    # transposed 64->64 from 7x7 inputs, transposed 64->32 from 14x14 inputs, conv 32->1 on 28x28.
    expected = (
        9 * 32 * 196 + 9 * 32 * 64 * 49 + 3136 * 32 + 32 * 3136 + 9 * 64 * 64 * 49 + 9 * 64 * 32 * 196 + 9 * 32 * 784
    )
    assert models.count_multiply_adds(autoencoder) == expected


def test_vae_sampling_adds_kl_and_is_deterministic_at_inference(digits):
    images, _ = digits
    keras.utils.set_random_seed(config.SEED)
    encoder, decoder, vae = models.build_variational_autoencoder(latent_dim=2, seed=1)
    posterior = np.asarray(encoder(images[:16]))
    assert posterior.shape == (16, 4)
    assert np.array_equal(np.asarray(vae(images[:16])), np.asarray(vae(images[:16])))
    sampled = [np.asarray(vae(images[:16], training=True)) for _ in range(2)]
    assert not np.array_equal(sampled[0], sampled[1]), "training mode must sample"
    vae(images[:16], training=True)
    mean, log_variance = posterior[:, :2], posterior[:, 2:]
    expected_kl = np.mean(-0.5 * np.sum(1 + log_variance - mean**2 - np.exp(log_variance), axis=1)) / 784
    assert float(vae.losses[0]) == pytest.approx(expected_kl, rel=1e-4)


def test_sampling_layer_uses_only_keras_ops_and_random():
    """GaussianSampling.call may use keras.ops and keras.random, and no backend or NumPy directly (any backend)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(models.GaussianSampling)))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            while isinstance(node, ast.Attribute):
                node = node.value
            if isinstance(node, ast.Name):
                roots.add(node.id)
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert roots <= {"keras", "ops", "self", "super", "layers"}, roots
    assert imported <= {"ops"}, imported


def test_two_builds_of_one_design_have_the_same_architecture():
    first, second = models.build_dense_autoencoder()[2], models.build_dense_autoencoder()[2]
    assert first.layers[0].layers[0].name != second.layers[0].layers[0].name, "Keras numbers default names"
    assert models.architecture(first) == models.architecture(second)
    assert models.architecture_fingerprint(first) == models.architecture_fingerprint(second)
    others = [
        models.build_dense_autoencoder(16)[2],
        models.build_dense_autoencoder(hidden_units=(512,))[2],
        models.build_conv_autoencoder()[2],
        models.build_variational_autoencoder(latent_dim=32)[2],
    ]
    for other in others:
        assert models.architecture(other) != models.architecture(first)
    fingerprints = {models.architecture_fingerprint(model) for model in [first, *others]}
    assert len(fingerprints) == 1 + len(others)


def test_the_fingerprint_survives_saving_and_loading(tmp_path):
    vae = models.build_variational_autoencoder(latent_dim=2, seed=1)[2]
    vae.save(tmp_path / "vae.keras")
    loaded = keras.models.load_model(tmp_path / "vae.keras")
    assert models.architecture_fingerprint(loaded) == models.architecture_fingerprint(vae)
    assert isinstance(loaded.layers[1], models.GaussianSampling)


@pytest.mark.parametrize(
    ("build", "error", "expected"),
    [
        (lambda: models.build_dense_autoencoder(latent_dim=0), ValueError, "latent_dim must be from 1 to 784, got 0"),
        (lambda: models.build_dense_autoencoder(latent_dim=-3), ValueError, "latent_dim must be from 1 to 784, got -3"),
        (
            lambda: models.build_dense_autoencoder(latent_dim=785),
            ValueError,
            "latent_dim must be from 1 to 784, got 785",
        ),
        (lambda: models.build_dense_autoencoder(latent_dim=2.5), TypeError, "latent_dim must be an integer, got float"),
        (lambda: models.build_conv_autoencoder(latent_dim=0), ValueError, "latent_dim must be from 1 to 784"),
        (lambda: models.build_variational_autoencoder(latent_dim=785), ValueError, "latent_dim must be from 1 to 784"),
        (lambda: models.build_dense_autoencoder(hidden_units=(0,)), ValueError, "hidden_units must hold positive"),
        (lambda: models.build_dense_autoencoder(hidden_units=512), TypeError, "hidden_units must be a tuple"),
        (lambda: models.build_conv_autoencoder(filters=(32,)), ValueError, "filters must hold 2"),
    ],
    ids=[
        "latent-0",
        "latent-negative",
        "latent-785",
        "latent-float",
        "conv-latent-0",
        "vae-latent-785",
        "hidden-0",
        "hidden-int",
        "filters-1",
    ],
)
def test_builders_refuse_bad_arguments_by_name(build, error, expected):
    with pytest.raises(error, match=expected):
        build()
