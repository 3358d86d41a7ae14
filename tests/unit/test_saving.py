"""A trained model and its record, saved and loaded as one checked unit, and every way that unit breaks.

The faults are those of real learners' machines: a save killed between its two renames or halfway, another
model saved under the same name, truncated files, records written by an older version.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.unit.support import child_env, one_line
from utils import models, preprocessing, saving, training
from utils.files import sha256_file


def build_small() -> keras.Sequential:
    return models.build_dense_autoencoder(latent_dim=8, hidden_units=(32,))[2]


def build_other() -> keras.Sequential:
    return models.build_dense_autoencoder(latent_dim=8, hidden_units=(48,))[2]


@pytest.fixture(scope="module")
def digits(mnist):
    """400 real training digits and 100 validation digits, flat and in [0, 1]."""
    (x_train, _), _ = mnist
    images = preprocessing.flatten_images(preprocessing.scale_images(x_train[:500]))
    return images[:400], images[400:]


@pytest.fixture(scope="module")
def trained_pair(digits, tmp_path_factory):
    """One epoch of training on real digits, saved once as "small"; the tests get copies of the two files."""
    folder = tmp_path_factory.mktemp("trained-pair")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AE_OUTPUT_DIR", str(folder))
        patch.setenv("AE_QUICK", "1")
        model, record = saved_or_trained(digits)
        return saving.model_path("small").parent, saving.weights_sha256(model), record


@pytest.fixture
def good_pair(trained_pair, quick_outputs):
    """This test's outputs/quick/models/ holding the good pair "small"; returns its .keras path."""
    folder, _, _ = trained_pair
    shutil.copytree(folder, quick_outputs / "models")
    return saving.model_path("small")


def saved_or_trained(digits, build=build_small, name="small"):
    """What a notebook does: the saved model if it is valid, otherwise one epoch of training, saved."""
    loaded = saving.load(name, build)
    if loaded is not None:
        return loaded
    train, val = digits
    keras.utils.set_random_seed(7)
    model = build()
    settings = training.default_settings(quick=True, epochs=1, batch_size=64, jit_compile=False)
    record = training.train_autoencoder(model, train, train, (val, val), settings, verbose=False)
    saving.save(name, model, record)
    return model, record


def part_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if ".part" in path.name)


# --------------------------------------------------------------------------- a good pair


def test_save_writes_the_pair_under_outputs_and_load_checks_it(digits, quick_outputs, capsys):
    assert saving.load("small", build_small) is None, "nothing saved yet: None, quietly"
    assert capsys.readouterr() == ("", "")
    model, record = saved_or_trained(digits)
    path = saving.model_path("small")
    assert path == quick_outputs / "models" / "small.keras", "AE_OUTPUT_DIR and quick mode are honoured"
    assert sorted(p.name for p in path.parent.iterdir()) == ["small.json", "small.keras"]
    saved = json.loads(saving.record_path(path).read_text())
    # The record ties itself to its model: the file's sha256, the weights' sha256 and the architecture.
    assert saved["model_file_sha256"] == sha256_file(path)
    assert saved["weights_sha256"] == saving.weights_sha256(model)
    assert saved["architecture_sha256"] == models.architecture_fingerprint(build_small())
    assert saved["architecture_sha256"] != models.architecture_fingerprint(build_other())
    assert saved["history"] == record.history and saved["train_size"] == 400
    loaded, loaded_record = saving.load("small", build_small)
    assert capsys.readouterr().out.startswith("Loaded the model saved in ")
    assert loaded_record == record and loaded_record.epochs_run == 1
    assert saving.weights_sha256(loaded) == saving.weights_sha256(model)
    _, val = digits
    np.testing.assert_allclose(loaded.predict(val, verbose=0), model.predict(val, verbose=0), atol=1e-6)


def test_a_vae_with_its_sampling_layer_saves_and_loads(digits, quick_outputs):
    train, val = digits
    build = lambda: models.build_variational_autoencoder(latent_dim=2, seed=1)[2]  # noqa: E731
    vae = build()
    settings = training.default_settings(quick=True, epochs=1, batch_size=64, jit_compile=False)
    record = training.train_autoencoder(vae, train, train, (val, val), settings, verbose=False)
    saving.save("vae_test", vae, record)
    loaded, _ = saving.load("vae_test", build)
    assert isinstance(loaded.layers[1], models.GaussianSampling)
    np.testing.assert_allclose(np.asarray(loaded(val[:8])), np.asarray(vae(val[:8])), atol=1e-6)


def test_save_refuses_non_finite_weights(quick_outputs):
    model = build_small()
    weights = model.get_weights()
    weights[0][0, 0] = np.inf
    model.set_weights(weights)
    with pytest.raises(ValueError, match="NaN or infinite weights, so it was not saved to .*broken.keras"):
        saving.save("broken", model, saving.TrainingRecord({}, 0.0, {}, 0))
    assert list((quick_outputs / "models").iterdir()) == []


# --------------------------------------------------------------------------- interrupted saves

CRASHING_SAVE = """
import os, signal, sys
from utils import course
course.start_backend("jax")  # the quickest start: this process only writes a file
import keras
from utils import models, saving

calls = []
real_replace = os.replace


def replace_or_die(source, destination):
    calls.append(destination)
    if len(calls) == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)  # the power goes out: no cleanup runs
    real_replace(source, destination)


os.replace = replace_or_die
keras.utils.set_random_seed(3)
model = models.build_dense_autoencoder(latent_dim=8, hidden_units=(32,))[2]
saving.save("small", model, saving.TrainingRecord({"loss": [0.5]}, 1.0, {}, 10))
"""


def kill_during_save(outputs: Path, at_rename: int) -> None:
    """Save another model as "small" in a child process that is killed just before rename ``at_rename``."""
    env = child_env(AE_OUTPUT_DIR=outputs, AE_QUICK="1", KERAS_BACKEND="jax")
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_SAVE, str(at_rename)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]


def test_crash_between_the_two_renames_is_caught_and_retrained(digits, good_pair, quick_outputs, trained_pair, capsys):
    path, first = good_pair, trained_pair[2]
    kill_during_save(quick_outputs.parent, at_rename=2)  # the new .keras is in place, its record is not
    assert sha256_file(path) != first.model_file_sha256
    assert [name.split(".")[1:3] for name in part_files(path.parent)] == [["small", "json"]]
    capsys.readouterr()
    model, record = saved_or_trained(digits)
    message = one_line(capsys.readouterr().err)
    assert f"{path} does not match the sha256 in its record small.json" in message
    assert message.endswith("training it again.")
    assert part_files(path.parent) == [], "the leftover .part file is removed"
    assert record.model_file_sha256 == sha256_file(path)
    loaded, _ = saved_or_trained(digits)
    assert "Loaded the model saved in" in capsys.readouterr().out
    assert saving.weights_sha256(loaded) == saving.weights_sha256(model)


def test_save_killed_halfway_leaves_nothing_behind(good_pair, quick_outputs, trained_pair, capsys):
    path = good_pair
    kill_during_save(quick_outputs.parent, at_rename=1)  # killed before any rename: only the .keras part is written
    assert [name.split(".")[1:3] for name in part_files(path.parent)] == [["small", "keras"]]
    capsys.readouterr()
    loaded, _ = saving.load("small", build_small)
    assert "Loaded the model saved in" in capsys.readouterr().out, "the old pair is intact and still used"
    assert saving.weights_sha256(loaded) == trained_pair[1]
    assert part_files(path.parent) == [], "the leftover .part file is removed"


# --------------------------------------------------------------------------- a pair that does not agree


def test_another_architecture_under_the_same_name_is_not_used(digits, good_pair, capsys):
    model, record = saved_or_trained(digits, build_other)
    message = one_line(capsys.readouterr().err)
    assert "small.keras holds a different architecture" in message and message.endswith("training it again.")
    assert model.layers[0].layers[0].units == 48
    assert record.architecture_sha256 == models.architecture_fingerprint(build_other())
    saved_or_trained(digits, build_other)
    assert "Loaded the model saved in" in capsys.readouterr().out


def test_another_model_saved_by_hand_under_the_same_name_is_not_used(good_pair, capsys):
    path = good_pair
    keras.utils.set_random_seed(3)
    build_small().save(path)  # same architecture, other (untrained) weights, record left as it was
    assert saving.load("small", build_small) is None
    message = one_line(capsys.readouterr().err)
    assert f"{path} does not match the sha256 in its record small.json" in message
    assert message.endswith("training it again.")


def test_truncated_record_is_named_as_the_damaged_file(digits, good_pair, capsys):
    record_file = saving.record_path(good_pair)
    text = record_file.read_text()
    record_file.write_text(text[: len(text) // 2])
    capsys.readouterr()
    _, record = saved_or_trained(digits)
    message = one_line(capsys.readouterr().err)
    assert message.startswith(f"the training record {record_file} is damaged (")
    assert message.endswith("training it again.")
    assert json.loads(record_file.read_text())["model_file_sha256"] == record.model_file_sha256


def test_truncated_model_file_is_named_without_keras_file_not_found(digits, good_pair, capsys):
    path = good_pair
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    saved_or_trained(digits)
    message = one_line(capsys.readouterr().err)
    assert message.startswith(f"{path} does not match the sha256") and "truncated or damaged" in message
    assert "File not found" not in message
    assert keras.models.load_model(path) is not None, "a model trained again replaced the damaged file"


def test_record_without_checksums_is_not_trusted(good_pair, capsys):
    record_file = saving.record_path(good_pair)
    old_style = {k: v for k, v in json.loads(record_file.read_text()).items() if not k.endswith("sha256")}
    record_file.write_text(json.dumps(old_style))
    assert saving.load("small", build_small) is None
    assert "has no checksums (an older version wrote it)" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("model missing", "small.keras is missing, though its record small.json is there"),
        ("record missing", "small.json is missing, so small.keras cannot be checked"),
        ("model is a folder", "small.keras is a folder, not a model file"),
        ("record not a mapping", "small.json is damaged (history or settings is not a mapping)"),
    ],
)
def test_half_a_pair_is_reported_with_what_the_caller_does_next(good_pair, capsys, damage, expected):
    path = good_pair
    record_file = saving.record_path(path)
    if damage == "model missing":
        path.unlink()
    elif damage == "record missing":
        record_file.unlink()
    elif damage == "model is a folder":
        path.unlink()
        path.mkdir()
    else:
        record_file.write_text(json.dumps({**json.loads(record_file.read_text()), "history": [0.1]}))
    capsys.readouterr()
    assert saving.load("small", build_small, next_step="using the shipped weights instead") is None
    message = one_line(capsys.readouterr().err)
    assert expected in message and message.endswith(": using the shipped weights instead.")


def test_a_record_reads_back_as_it_was_written(tmp_path):
    record = saving.TrainingRecord({"loss": [0.3, 0.2], "val_loss": [0.31, 0.25]}, 12.5, {"epochs": 2}, 400)
    path = tmp_path / "record.json"
    path.write_text(json.dumps(asdict(record)))
    assert saving.TrainingRecord.load(path) == record and record.epochs_run == 2
    path.write_bytes(b"\xff\xfe not json")
    with pytest.raises(saving.SavedModelError, match=f"the training record {path} is damaged"):
        saving.TrainingRecord.load(path)


# --------------------------------------------------------------------------- folders that cannot be written


def test_save_into_an_unwritable_outputs_folder_keeps_the_model_in_memory(trained_pair, tmp_path, monkeypatch, capsys):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("AE_OUTPUT_DIR", str(tmp_path / "a-file" / "outputs"))
    model = build_small()
    _, _, record = trained_pair
    assert saving.save("small", model, record) is None
    assert capsys.readouterr() == ("", ""), "the notebook's first cell said it once; saving stays quiet"
    assert saving.load("small", build_small) is None, "nothing to load, and no traceback"


def test_a_full_disk_during_a_save_is_one_line_and_keeps_the_last_good_pair(
    good_pair, trained_pair, monkeypatch, capsys
):
    before = sorted(path.read_bytes() for path in good_pair.parent.iterdir())

    def full_disk(self, filepath, *args, **kwargs):
        Path(filepath).write_bytes(b"PK half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", full_disk)
    _, _, record = trained_pair
    assert saving.save("small", build_small(), record) is None
    line = one_line(capsys.readouterr().err)
    assert line.startswith("The model was not saved: could not write ") and "small.keras (No space left" in line
    assert "MB free there" in line and "stays in memory" in line and "AE_OUTPUT_DIR" in line
    assert part_files(good_pair.parent) == []
    assert sorted(path.read_bytes() for path in good_pair.parent.iterdir()) == before
