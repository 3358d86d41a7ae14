"""The benchmark's quick mode produces well-formed per-backend tables and JSON (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "training_speed.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("training_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One quick run on both backends, two interleaved rounds, three recipes and a TensorFlow-only ablation."""
    out = tmp_path_factory.mktemp("bench")
    env = {**os.environ, "AE_QUICK": "1", "AE_OUTPUT_DIR": str(out)}
    arguments = [
        "--backends",
        "tensorflow,jax",
        "--recipes",
        "series,blog_deep,conv",
        "--ablations",
        "no_jit",
    ]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *arguments, "--repeats", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    folder = out / "quick" / "benchmarks"
    return done.stdout, (folder / "training_speed.md").read_text(), folder / "training_speed.json"


def table_rows(table: str, first_cell: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in table.splitlines()
        if line.startswith(f"| {first_cell}")
    ]


def test_recipe_table_has_a_row_per_recipe_and_backend(quick_run):
    stdout, table, _ = quick_run
    assert table in stdout
    assert "keras 3." in table and "jax 0." in table and "tensorflow 2." in table
    assert "2 round(s), interleaved" in table
    rows = table_rows(table, "series default") + table_rows(table, "Keras blog deep:")
    assert [(row[0].split(":")[0], row[1]) for row in rows] == [
        ("series default", "tensorflow"),
        ("series default", "jax"),
        ("Keras blog deep", "tensorflow"),
        ("Keras blog deep", "jax"),
    ]
    for row in rows:
        assert row[2] == "2", "quick mode trains two epochs, in each of two rounds"
        median, *low_high = re.fullmatch(r"(\S+)(?: \[(\S+)-(\S+)\])?", row[3]).groups()
        assert all(0 < float(mse) < 0.3 for mse in [median, *filter(None, low_high)]), (
            "MSEs of pixels in [0, 1]"
        )
        assert float(row[5].split()[0].replace(",", "")) > 0
        assert re.fullmatch(r"\d+%( \[\d+-\d+\])?", row[7]), row[7]
    conv_rows = table_rows(table, "series conv model")
    assert [row[1] for row in conv_rows] == ["tensorflow"], "the conv recipe runs once, on TensorFlow"
    ratio_rows = table_rows(table, "Keras blog deep |")
    assert [row[1] for row in ratio_rows] == ["tensorflow", "jax"]
    for row in ratio_rows:
        assert re.fullmatch(r"\d+\.\dx( \[\d+\.\d-\d+\.\d\])?|not reached in [12] of 2 rounds", row[5]), row[
            5
        ]
    peak_line = next(line for line in table.splitlines() if line.startswith("fp32 peak"))
    assert re.search(r"tensorflow \d+( \[\d+-\d+\])? GFLOP/s; jax \d+( \[\d+-\d+\])? GFLOP/s", peak_line)


def test_ablation_rows_and_goals(quick_run):
    _, table, _ = quick_run
    rows = table_rows(table, "without XLA")
    assert [row[1] for row in rows] == ["tensorflow"], "a TensorFlow-only ablation runs on TensorFlow only"
    assert rows[0][5] in {"better", "worse", "within the noise"}
    assert re.fullmatch(r"\d+\.\d\dx( \[\d+\.\d\d-\d+\.\d\d\])?", rows[0][6]), "the paired CPU-time ratio"
    assert "TensorFlow only: on JAX, jit_compile=False runs the step op by op" in table
    after_goals = table.split("\nGoals (met only when every round meets them):\n")[1]
    goals = [line for line in after_goals.splitlines() if line.startswith("- ")]
    assert sum("10x sooner" in line for line in goals) == 4, "every pair of backends"
    assert sum("of the measured fp32 matmul peak" in line for line in goals) == 2
    assert sum("Conv model at test MSE <= 0.0025" in line for line in goals) == 1
    assert all(line.endswith(("met.", "not met.")) for line in goals)


def test_json_is_interleaved_and_renders_to_the_same_table(quick_run):
    _, table, json_path = quick_run
    measured = json.loads(json_path.read_text())
    runs = measured["runs"]
    assert len(runs) == 2 * (2 * 2 + 2) + 1, (
        "2 rounds x (2 recipes x 2 backends + no_jit and its baseline) + conv"
    )
    assert [run["round"] for run in runs] == sorted(run["round"] for run in runs)
    tensorflow_jobs, jax_jobs = (
        ["series", "blog_deep", "conv", "reference", "no_jit"],
        ["series", "blog_deep"],
    )
    assert [(r["key"], r["backend"]) for r in runs if r["round"] == 0] == [
        *((key, "tensorflow") for key in tensorflow_jobs),
        *((key, "jax") for key in jax_jobs),
    ]
    tensorflow_jobs.remove("conv")  # the conv recipe runs once
    assert [r["key"] for r in runs if r["round"] == 1] == tensorflow_jobs + jax_jobs
    for run in runs:
        assert (run["peak_gflops"] is not None) == (run["kind"] == "recipe")
        assert len(run["train_seconds"]) == len(run["test_mse"]) == run["epochs"]
        assert run["train_seconds"] == sorted(run["train_seconds"])
        assert run["backend"] in {"tensorflow", "jax"}
    rendered = subprocess.run(
        [sys.executable, str(SCRIPT), "--render", str(json_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert rendered.stdout.strip() == table.strip()


def test_training_flops_count_the_matrix_products_done():
    import keras

    from utils import models

    benchmark = load_benchmark()
    keras.utils.set_random_seed(0)
    dense = models.build_dense_autoencoder()[2]
    forward = models.count_multiply_adds(dense)
    # The first layer needs no input gradient: 3 products per layer, minus that one.
    assert benchmark.training_flops_per_image(dense) == 2 * (3 * forward - 784 * 512)
    assert benchmark.layer_macs(dense) == [784 * 512, 512 * 256, 256 * 32, 32 * 256, 256 * 512, 512 * 784]


def test_verdict_needs_ranges_that_do_not_overlap():
    verdict = load_benchmark().verdict
    assert verdict([10.0, 11.0, 12.0], [7.0, 8.0, 9.0]) == "better"
    assert verdict([7.0, 8.0, 9.0], [10.0, 11.0, 12.0]) == "worse"
    assert verdict([9.0, 10.0, 11.5], [7.0, 8.0, 9.5]) == "within the noise"
    assert verdict([12.0], [7.0]) == "too few runs for a verdict"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--ablations", "turbo"], "unknown ablations ['turbo']"),
        (["--backends", "jax,theano"], "unknown backends ['theano']"),
        (["--recipes", "blog_huge"], "unknown recipes ['blog_huge']"),
        (["--repeats", "0"], "--repeats must be at least 1, got 0"),
    ],
)
def test_bad_arguments_are_refused(arguments, message):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2 and message in done.stderr
