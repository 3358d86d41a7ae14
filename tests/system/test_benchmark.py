"""The benchmark (benchmarks/): its quick mode produces well-formed per-backend tables and JSON (no timing is
asserted), its reference models are the Keras blog's, and its counting, verdicts and plan follow its rules."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys

import pytest

from benchmarks import references, report, runner
from tests.conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "training_speed.py"
RANGE = r"(?: \[(\S+)-(\S+)\])?"  # the optional "[min-max]" after a median


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One quick run on both backends, two interleaved rounds, three recipes and a TensorFlow-only ablation."""
    out = tmp_path_factory.mktemp("bench")
    env = {**os.environ, "AE_QUICK": "1", "AE_OUTPUT_DIR": str(out)}
    arguments = ["--backends", "tensorflow,jax", "--recipes", "series,blog_deep,conv", "--ablations", "no_jit"]
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


def test_report_is_printed_and_names_the_run(quick_run):
    stdout, table, _ = quick_run
    assert table in stdout
    assert "keras 3." in table and "jax 0." in table and "tensorflow 2." in table
    assert "2 round(s), interleaved" in table
    assert table.startswith("Training-speed benchmark, ") and "quick mode (subsets, 2 epochs" in table


def test_recipe_table_has_a_row_per_recipe_and_backend_in_order(quick_run):
    _, table, _ = quick_run
    rows = table_rows(table, "series default") + table_rows(table, "Keras blog deep:")
    assert [(row[0].split(":")[0], row[1]) for row in rows] == [
        ("series default", "tensorflow"),
        ("series default", "jax"),
        ("Keras blog deep", "tensorflow"),
        ("Keras blog deep", "jax"),
    ]
    conv_rows = table_rows(table, "series conv model")
    assert [row[1] for row in conv_rows] == ["tensorflow"], "the conv recipe runs once, on TensorFlow"


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
@pytest.mark.parametrize("recipe", ["series default", "Keras blog deep:"])
def test_recipe_row_cells(quick_run, recipe, backend):
    _, table, _ = quick_run
    [row] = [row for row in table_rows(table, recipe) if row[1] == backend]
    assert row[2] == "2", "quick mode trains two epochs, in each of two rounds"
    median, *low_high = re.fullmatch(r"(\S+)" + RANGE, row[3]).groups()
    assert all(0 < float(mse) < 0.3 for mse in [median, *filter(None, low_high)]), "MSEs of pixels in [0, 1]"
    assert float(row[5].split()[0].replace(",", "")) > 0
    assert re.fullmatch(r"\d+%( \[\d+-\d+\])?", row[7]), row[7]


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_time_to_the_blog_error_is_a_ratio_or_says_not_reached(quick_run, backend):
    _, table, _ = quick_run
    [row] = [row for row in table_rows(table, "Keras blog deep |") if row[1] == backend]
    assert re.fullmatch(r"\d+\.\dx( \[\d+\.\d-\d+\.\d\])?|not reached in [12] of 2 rounds", row[5]), row[5]


def test_peak_line_has_each_backend(quick_run):
    _, table, _ = quick_run
    peak_line = next(line for line in table.splitlines() if line.startswith("fp32 peak"))
    assert "best of 2 windows" in peak_line
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
    peaks = [line for line in goals if "of the measured fp32 matmul" in line]
    assert len(peaks) == 2 and ">= 70%" in peaks[0] + peaks[1] and ">= 50%" in peaks[0] + peaks[1]
    assert sum("Conv model at test MSE <= 0.0025" in line for line in goals) == 1
    assert all(line.endswith(("met.", "not met.")) for line in goals)


def test_json_is_interleaved_and_renders_to_the_same_table(quick_run):
    _, table, json_path = quick_run
    measured = json.loads(json_path.read_text())
    runs = measured["runs"]
    assert len(runs) == 2 * (2 * 2 + 2) + 1, "2 rounds x (2 recipes x 2 backends + no_jit and its baseline) + conv"
    assert [run["round"] for run in runs] == sorted(run["round"] for run in runs)
    tensorflow_jobs, jax_jobs = (["series", "blog_deep", "conv", "reference", "no_jit"], ["series", "blog_deep"])
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

    keras.utils.set_random_seed(0)
    dense = models.build_dense_autoencoder()[2]
    forward = models.count_multiply_adds(dense)
    # The first layer needs no input gradient: 3 products per layer, minus that one.
    assert references.training_flops_per_image(dense) == 2 * (3 * forward - 784 * 512)
    assert references.layer_macs(dense) == [784 * 512, 512 * 256, 256 * 32, 32 * 256, 256 * 512, 512 * 784]


@pytest.mark.parametrize(
    ("build", "name", "units"),
    [
        (references.build_keras_blog_autoencoder, "keras_blog_shallow", (32, 784)),
        (references.build_keras_blog_deep_autoencoder, "keras_blog_deep", (128, 64, 32, 64, 128, 784)),
    ],
)
def test_reference_recipes_match_the_blog(build, name, units):
    """The blog's models: Dense layers of these sizes on flat 784-pixel input, ReLU inside, sigmoid output."""
    import keras

    model = build()
    assert model.name == name
    assert tuple(model.input_shape) == (None, 784)
    assert all(isinstance(layer, keras.layers.Dense) for layer in model.layers)
    assert [layer.units for layer in model.layers] == list(units)
    activations = [keras.activations.serialize(layer.activation) for layer in model.layers]
    assert activations == ["relu"] * (len(units) - 1) + ["sigmoid"]
    # A Dense layer holds a weight per input and output pair, plus a bias per output.
    fan_ins = (784, *units[:-1])
    assert model.count_params() == sum((fan_in + 1) * out for fan_in, out in zip(fan_ins, units, strict=True))


@pytest.mark.parametrize(
    ("variant", "baseline", "expected"),
    [
        ([10.0, 11.0, 12.0], [7.0, 8.0, 9.0], "better"),
        ([7.0, 8.0, 9.0], [10.0, 11.0, 12.0], "worse"),
        ([9.0, 10.0, 11.5], [7.0, 8.0, 9.5], "within the noise"),
        ([12.0], [7.0], "too few runs for a verdict"),
    ],
)
def test_verdict_needs_ranges_that_do_not_overlap(variant, baseline, expected):
    assert report.verdict(variant, baseline) == expected


@pytest.mark.parametrize(
    ("values", "digits", "unit", "expected"),
    [
        ([3.0, 1.0, 2.0], ".1f", "", "2.0 [1.0-3.0]"),
        ([5.01, 4.99, 5.04], ".1f", "", "5.0"),  # all print the same: no range
        ([0.81, 0.9, 1.1], ".2f", "x", "0.90x [0.81-1.10]"),
        ([], ".1f", "", "n/a"),
    ],
)
def test_spread_is_the_median_and_the_range(values, digits, unit, expected):
    assert report.spread(values, digits, unit) == expected


@pytest.mark.parametrize(
    ("chosen", "backends", "expected"),
    [
        (["no_jit"], ["tensorflow", "jax"], [("reference", "tensorflow"), ("no_jit", "tensorflow")]),
        (["no_jit"], ["jax"], []),  # a TensorFlow-only ablation, and so no baseline either
        (["conv_jax"], ["tensorflow", "jax"], [("conv_reference", "tensorflow"), ("conv_jax", "jax")]),
        (["conv_jax"], ["jax"], [("conv_jax", "jax")]),  # its baseline's backend was not chosen
        (["constant_lr"], ["tensorflow", "jax"], [("constant_lr", "jax")]),  # its baseline is a recipe
    ],
)
def test_ablations_bring_their_baselines(chosen, backends, expected):
    assert runner.needed_ablations(chosen, backends) == expected


def test_an_ablation_compared_with_a_recipe_adds_that_recipe_first():
    ablations = runner.needed_ablations(["constant_lr"], ["jax"])
    assert runner.needed_recipes(["blog_deep"], ablations) == ["series", "blog_deep"]
    assert runner.needed_recipes(["blog_deep", "series"], ablations) == ["blog_deep", "series"]


def test_plan_runs_every_job_once_per_round_and_the_conv_recipe_once():
    ablations = [("reference", "jax"), ("spe_20", "jax")]
    schedule = runner.plan(["tensorflow", "jax"], ["series", "conv"], ablations, repeats=2)
    assert schedule == [
        (0, "recipe", "series", "tensorflow"),
        (0, "recipe", "conv", "tensorflow"),
        (0, "recipe", "series", "jax"),
        (0, "ablation", "reference", "jax"),
        (0, "ablation", "spe_20", "jax"),
        (1, "recipe", "series", "tensorflow"),
        (1, "recipe", "series", "jax"),
        (1, "ablation", "reference", "jax"),
        (1, "ablation", "spe_20", "jax"),
    ]


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        (
            "processor\t: 0\nmodel name\t: Example CPU 9000 @ 3.00GHz\ncpu MHz\t\t: 3000.0\n",
            "Example CPU 9000 @ 3.00GHz",
        ),
        (None, platform.processor() or "unknown CPU"),  # no /proc/cpuinfo, as on macOS
    ],
)
def test_cpu_name_reads_cpuinfo_or_falls_back(tmp_path, monkeypatch, cpuinfo, expected):
    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        path.write_text(cpuinfo)
    monkeypatch.setattr(references, "CPUINFO", path)
    assert references.cpu_name() == expected


def test_importing_the_benchmark_loads_no_backend():
    """scripts/run_series.py imports cpu_name from here in a process that must not start Keras."""
    code = (
        "import sys; import benchmarks.training_speed, benchmarks.references; "
        "print(sorted(name for name in ('keras', 'tensorflow', 'jax') if name in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


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


def test_the_profile_splits_an_epoch_into_parts_that_add_up(tmp_path):
    """benchmarks/profile_training.py in quick mode: every part is a share of the timed epoch, none negative."""
    env = {**os.environ, "AE_QUICK": "1", "AE_OUTPUT_DIR": str(tmp_path)}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "profile_training.py"),
            "--epochs",
            "2",
            "--rounds",
            "1",
            "--backends",
            "jax,tensorflow",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "quick" / "benchmarks" / "profile_training.json").read_text())
    assert set(results) == {"jax", "tensorflow"}
    for backend, runs in results.items():
        (timed,) = runs["timed"]
        parts = [timed[part] for part in ("train steps", "validation", "callbacks and logging")]
        assert all(part > 0 for part in parts), (backend, timed)
        # The steps and the validation are timed entirely inside the epoch they split (no timing is asserted).
        assert timed["train steps"] + timed["validation"] < timed["epoch"], (backend, timed)
        assert f"| {backend} |" in done.stdout
    (split,) = results["jax"]["split"]
    assert split["gradient"] > 0 and split["step"] > 0 and split["flops"] > 0 and split["peak"] > 0
    assert "a quick-mode subset (not a result)" in done.stdout
