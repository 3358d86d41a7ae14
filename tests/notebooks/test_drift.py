"""The models and settings a notebook writes in its cells are the ones `utils` rebuilds for the later notebooks.

Each case executes a notebook's own cells up to the one that defines what `utils` also builds, then a check
cell in the same kernel that compares the two (configuration, starting weights, settings, noise) and prints
the comparison as JSON. So an edit to either side that makes them differ fails here, not in a learner's output.
"""

from __future__ import annotations

import json

import nbformat
import pytest

from tests.conftest import NOTEBOOKS, execute_notebook

SAME_MODEL = """
reference = models.{build}
same_weights = all(np.array_equal(a, b) for a, b in zip({model}.get_weights(), reference.get_weights(), strict=True))
found = {{"same architecture": models.architecture({model}) == models.architecture(reference),
         "same starting weights": same_weights}}
"""

CASES = {
    "02": {
        "until": 'autoencoder = keras.Sequential([encoder, decoder], name="autoencoder")',
        "check": "keras.utils.set_random_seed(config.SEED)\n"
        + SAME_MODEL.format(build="build_dense_autoencoder(latent_dim)[2]", model="autoencoder"),
    },
    "03": {
        "until": "callbacks = [",
        "check": """
series = training.default_settings()
early = next(c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping))
schedule = autoencoder.optimizer._learning_rate  # the schedule itself, not its current value
found = {
    "epochs": epochs == series.epochs, "batch size": batch_size == series.batch_size,
    "learning rate": learning_rate == series.learning_rate, "loss": autoencoder.loss == series.loss,
    "patience": early.patience == series.patience, "optimizer": type(autoencoder.optimizer).__name__ == "Adam",
    "cosine decay to 2%": isinstance(schedule, keras.optimizers.schedules.CosineDecay) and schedule.alpha == 0.02
    and schedule.decay_steps == epochs * math.ceil(len(prepared.x_train) / batch_size),
    "same architecture": models.architecture(autoencoder) == models.architecture(models.build_dense_autoencoder()[2]),
}
""",
    },
    "06": {
        "until": 'conv_autoencoder = keras.Sequential([conv_encoder, conv_decoder], name="conv_autoencoder")',
        "check": "keras.utils.set_random_seed(config.SEED)\n"
        + SAME_MODEL.format(build="build_conv_autoencoder(latent_dim)[2]", model="conv_autoencoder"),
    },
    "08": {
        "until": "denoiser = models.build_dense_autoencoder(",
        "check": """
recipe = recipes.get("denoising_autoencoder_64d")
noise = {"validation": (x_val_noisy, prepared.x_val, recipes.VALIDATION_NOISE_SEED),
         "test": (x_test_noisy, prepared.x_test, recipes.TEST_NOISE_SEED)}
found = {"same architecture": models.architecture(denoiser) == models.architecture(recipe.build()),
         "same sigma": sigma == recipes.DENOISING_SIGMA, "same epochs": recipe.settings["epochs"] > live_epochs}
found |= {f"same {name} noise": bool(np.array_equal(noisy, preprocessing.add_gaussian_noise(clean, sigma, seed=seed)))
          for name, (noisy, clean, seed) in noise.items()}
""",
    },
    "10": {
        "until": "encoder_2d, decoder_2d, vae_2d = build_vae(latent_dim=2)",
        "check": """
keras.utils.set_random_seed(config.SEED)
reference = models.build_variational_autoencoder(latent_dim=2, seed=config.SEED)[2]
posterior = keras.ops.convert_to_tensor(np.random.default_rng(0).normal(size=(16, 4)).astype("float32"))
ours, theirs = GaussianSampling(seed=1), models.GaussianSampling(seed=1)
samples = [keras.ops.convert_to_numpy(layer(posterior, training=True)) for layer in (ours, theirs)]
found = {"same architecture": models.architecture(vae_2d) == models.architecture(reference),
         "same starting weights": all(np.array_equal(a, b) for a, b in zip(vae_2d.get_weights(), reference.get_weights(), strict=True)),
         "same samples": bool(np.allclose(*samples)), "same KL term": bool(np.isclose(float(ours.losses[0]), float(theirs.losses[0])))}
""",
    },
}
NUMBERED = {path.name[:2]: path for path in NOTEBOOKS}


def compare(number: str, tmp_path, edit=None) -> dict:
    """Run notebook ``number`` up to its defining cell (edited by ``edit`` if given), then the check; its JSON."""
    case = CASES[number]
    notebook = nbformat.read(NUMBERED[number], as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    last = next(index for index, cell in enumerate(code) if case["until"] in cell.source)
    kept = code[: last + 1]
    if edit:
        edit(kept)
    imports = "import json, math\nimport numpy as np\nimport keras\nfrom utils import models, preprocessing, recipes, training\n"
    check = nbformat.v4.new_code_cell(imports + case["check"] + "\nprint(json.dumps(found))")
    notebook.cells = [*kept, check]
    env = {"AE_HEADLESS": "1", "AE_OUTPUT_DIR": str(tmp_path)}
    if number == "08":  # its defining cell trains the live model: quick mode keeps that short
        env["AE_QUICK"] = "1"
    execute_notebook(notebook, env=env)
    return json.loads(check.outputs[-1].text)


@pytest.mark.parametrize("number", sorted(CASES))
def test_the_notebooks_cells_build_what_utils_builds(number, tmp_path):
    found = compare(number, tmp_path)
    assert found and all(found.values()), f"notebook {number} and utils differ: {found}"


def test_the_check_sees_an_edited_model(tmp_path):
    def narrower(cells):
        cell = next(cell for cell in cells if 'layers.Dense(512, activation="relu")' in cell.source)
        cell.source = cell.source.replace(
            'layers.Dense(512, activation="relu")', 'layers.Dense(500, activation="relu")', 1
        )

    found = compare("02", tmp_path, edit=narrower)
    assert found == {"same architecture": False, "same starting weights": False}


def test_the_check_sees_edited_settings(tmp_path):
    def slower(cells):
        cell = next(cell for cell in cells if "learning_rate = 2e-3" in cell.source)
        cell.source = cell.source.replace("learning_rate = 2e-3", "learning_rate = 1e-3")

    found = compare("03", tmp_path, edit=slower)
    assert found["learning rate"] is False and found["epochs"] is True
