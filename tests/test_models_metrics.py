"""Models, metrics and the train/save/load cycle, on real MNIST digits."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from utils import config, data, metrics, models, recipes, training


@pytest.fixture(scope="module")
def digits(mnist):
    (_, _), (x_test, y_test) = mnist
    images, labels = data.stratified_subset(x_test, y_test, 500, seed=0)
    return data.flatten_images(data.scale_images(images)), labels


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


@pytest.mark.parametrize("bad", [0, -3, 785, 2.5])
def test_latent_dim_is_checked(bad):
    with pytest.raises(ValueError, match="latent_dim"):
        models.build_dense_autoencoder(latent_dim=bad)


def test_reference_recipes_match_the_blog():
    shallow = models.build_keras_blog_autoencoder()
    deep = models.build_keras_blog_deep_autoencoder()
    assert [layer.units for layer in shallow.layers] == [32, 784]
    assert [layer.units for layer in deep.layers] == [128, 64, 32, 64, 128, 784]


def test_metrics_on_real_digits(digits):
    images, _ = digits
    noisy = data.add_gaussian_noise(images.reshape(-1, 28, 28), sigma=0.1, seed=0).reshape(-1, 784)
    mse = metrics.mse_per_image(images, noisy)
    assert mse.shape == (500,) and np.all(mse > 0)
    psnr = metrics.psnr_per_image(images, noisy)
    assert np.allclose(psnr, 10 * np.log10(1 / mse), atol=1e-3)
    ssim = metrics.ssim_per_image(images, noisy)
    assert np.all(ssim < 1)
    assert np.allclose(metrics.ssim_per_image(images, images), 1.0, atol=1e-6)
    worse = metrics.ssim_per_image(images, data.add_gaussian_noise(images, sigma=0.4, seed=0))
    assert np.all(worse < ssim)


def test_metrics_refuse_bad_shapes(digits):
    images, _ = digits
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.mse_per_image(images[:10], images[:11])
    with pytest.raises(ValueError, match=r"\(n, 28, 28\) or \(n, 784\)"):
        metrics.psnr_per_image(images[:, :100], images[:, :100])
    with pytest.raises(ValueError, match="float images"):
        metrics.ssim_per_image((images * 255).astype(np.uint8), images)


@pytest.mark.parametrize("metric", [metrics.mse_per_image, metrics.psnr_per_image, metrics.ssim_per_image])
def test_metrics_refuse_the_wrong_scale(digits, metric):
    images, _ = digits
    with pytest.raises(ValueError, match=r"pixels in \[0, 1\].*divide by 255"):
        metric(images * 255, images)
    with pytest.raises(
        ValueError, match=r"reconstructions must have pixels in \[0, 1\]; got values from -0.5"
    ):
        metric(images, images - 0.5)
    poisoned = images.copy()
    poisoned[3, 100] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        metric(images, poisoned)
    with pytest.raises(ValueError, match="empty"):
        metric(images[:0], images[:0])


def test_metrics_match_scikit_image_and_tf_image(digits):
    """PSNR is scikit-image's, image by image; SSIM agrees with the tf.image values the series used before."""
    import tensorflow as tf
    from skimage.metrics import peak_signal_noise_ratio

    images, _ = digits
    noisy = data.add_gaussian_noise(images, sigma=0.2, seed=4)
    ours = metrics.psnr_per_image(images, noisy)
    reference = [peak_signal_noise_ratio(a, b, data_range=1.0) for a, b in zip(images, noisy, strict=True)]
    np.testing.assert_allclose(ours, reference, rtol=1e-5)
    as_grids = images.reshape(-1, 28, 28, 1), noisy.reshape(-1, 28, 28, 1)
    tf_ssim = tf.image.ssim(*as_grids, max_val=1.0).numpy()
    np.testing.assert_allclose(metrics.ssim_per_image(images, noisy), tf_ssim, atol=1e-4)
    assert f"{metrics.ssim_per_image(images, noisy).mean():.3g}" == f"{tf_ssim.mean():.3g}"


def test_per_digit_table_and_markdown(digits):
    images, labels = digits
    per_image = {"mse": metrics.mse_per_image(images, np.zeros_like(images))}
    rows = metrics.per_digit_table(per_image, labels)
    assert [row["digit"] for row in rows] == list(range(10))
    assert sum(row["images"] for row in rows) == 500
    ones = images[labels == 1]
    assert rows[1]["mse"] == pytest.approx(float(np.mean(ones**2)))
    table = metrics.markdown_table(rows, {"mse": ".4f"})
    assert table.splitlines()[0] == "| digit | images | mse |"
    assert f"| 1 | {len(ones)} | {rows[1]['mse']:.4f} |" in table


def test_train_save_and_load(tmp_path, monkeypatch):
    monkeypatch.setenv(config.OUTPUT_ENV, str(tmp_path))
    monkeypatch.setenv(config.QUICK_ENV, "1")
    monkeypatch.setenv(config.FROM_SCRATCH_ENV, "1")
    prepared = training.prepare_mnist()
    assert prepared.x_train.shape == (10000, 784) and prepared.x_val.shape == (1000, 784)
    assert np.bincount(prepared.y_train).min() > 800
    autoencoder, record = recipes.trained_model("dense_autoencoder_32d", prepared, verbose=False)
    assert record.epochs_run == 5 and record.seconds > 0
    losses = record.history["val_loss"]
    assert losses[-1] < losses[0], "five epochs on real digits must lower the validation loss"
    path = training.model_path("dense_autoencoder_32d")
    assert path.is_file() and path.is_relative_to(tmp_path / "quick")
    saved_record = json.loads(path.with_suffix(".json").read_text())
    assert saved_record["settings"]["epochs"] == 5
    # The record ties itself to its model: the file's sha256, the weights' sha256 and the architecture.
    assert saved_record["model_file_sha256"] == data.sha256_file(path)
    assert saved_record["weights_sha256"] == training.weights_sha256(autoencoder)
    assert saved_record["architecture_sha256"] == models.architecture_fingerprint(
        models.build_dense_autoencoder()[2]
    )
    assert saved_record["architecture_sha256"] != models.architecture_fingerprint(
        models.build_dense_autoencoder(16)[2]
    )
    loaded, loaded_record = recipes.trained_model("dense_autoencoder_32d", prepared)
    assert loaded_record.history == record.history
    np.testing.assert_allclose(
        loaded.predict(prepared.x_test[:20], verbose=0),
        autoencoder.predict(prepared.x_test[:20], verbose=0),
        atol=1e-6,
    )


def test_damaged_model_file_is_retrained(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(config.OUTPUT_ENV, str(tmp_path))
    monkeypatch.setenv(config.QUICK_ENV, "1")
    monkeypatch.setenv(config.FROM_SCRATCH_ENV, "1")
    path = training.model_path("dense_autoencoder_32d")
    path.write_bytes(b"not a keras file")
    training.TrainingRecord({"loss": [1.0]}, 1.0, {}, 1).save(path.with_suffix(".json"))
    _, record = recipes.trained_model("dense_autoencoder_32d", training.prepare_mnist(), verbose=False)
    message = capsys.readouterr().err.strip()
    assert message.endswith("training it again.") and len(message.splitlines()) == 1
    assert str(path.with_suffix(".json")) in message, "the record without checksums is the file named"
    assert record.epochs_run == 5
    assert keras.models.load_model(path) is not None


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
        9 * 32 * 196
        + 9 * 32 * 64 * 49
        + 3136 * 32
        + 32 * 3136
        + 9 * 64 * 64 * 49
        + 9 * 64 * 32 * 196
        + 9 * 32 * 784
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


def test_vae_trains_and_reloads(tmp_path, monkeypatch, digits):
    monkeypatch.setenv(config.OUTPUT_ENV, str(tmp_path))
    images, _ = digits
    build = lambda: models.build_variational_autoencoder(latent_dim=2, seed=1)[2]  # noqa: E731
    settings = training.default_settings(epochs=2, batch_size=64)
    vae, record = training.load_or_train(
        "vae_test", build, images[:400], images[:400], (images[400:], images[400:]), settings, verbose=False
    )
    kl = np.array(record.history["val_loss"]) - np.array(record.history["val_bce"])
    assert np.all(kl > 0), "the KL term is part of the loss"
    loaded, _ = training.load_or_train("vae_test", build, images, images, (images, images), settings)
    np.testing.assert_allclose(np.asarray(loaded(images[:8])), np.asarray(vae(images[:8])), atol=1e-6)


def test_noisy_images_gives_fresh_seeded_noise(digits):
    images, _ = digits
    batches = training.NoisyImages(images, sigma=0.5, batch_size=64, seed=7)
    assert len(batches) == 8 and batches.num_images == 500
    noisy, clean = batches[0]
    assert noisy.shape == clean.shape == (64, 784)
    assert any(np.array_equal(clean[0], row) for row in images), "targets are the clean images"
    assert 0 <= noisy.min() and noisy.max() <= 1 and not np.array_equal(noisy, clean)
    again, _ = training.NoisyImages(images, sigma=0.5, batch_size=64, seed=7)[0]
    assert np.array_equal(noisy, again), "the same seed gives the same first batch"
    batches.on_epoch_end()
    next_noisy, next_clean = batches[0]
    assert not np.array_equal(next_clean, clean), "the order is reshuffled every epoch"
    every_image = np.concatenate([batches[i][1] for i in range(len(batches))])
    assert sorted(map(bytes, every_image)) == sorted(map(bytes, images)), "each epoch covers every image once"
    with pytest.raises(ValueError, match="targets=None"):
        training.train_autoencoder(
            models.build_dense_autoencoder()[2],
            batches,
            images,
            (images, images),
            training.default_settings(epochs=1),
        )
