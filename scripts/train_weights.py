"""Retrain every model the notebooks use from scratch, in full mode, and rewrite the shipped weights.

    make weights                                          # all of them (about 20 minutes on 2 cores)
    python scripts/train_weights.py --only conv_autoencoder_32d
    AE_QUICK=1 python scripts/train_weights.py --output /tmp/w   # a smoke run (tests); never into utils/
    python scripts/train_weights.py --table                # the shipped models and their test metrics

Run it only when a recipe changes, so that git history does not fill with binaries. Each model trains
in its own process, on the backend its recipe names (the fastest one for it on a CPU). Its weights are
stored as float16 when that leaves the test MSE, PSNR and SSIM unchanged to three significant digits,
and as float32 otherwise; utils/weights/manifest.json records the sha256, the recipe, the training
history, the test metrics and the library versions of every file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from utils import config, course  # noqa: E402

course.start_backend(config.backend_name())  # before Keras loads: no TensorFlow start-up notes

import numpy as np  # noqa: E402

from utils import recipes, weights  # noqa: E402
from utils.files import sha256_file, write_atomically  # noqa: E402

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_TOTAL_BYTES = 25 * 1024 * 1024


def write_manifest(manifest: dict, path: Path) -> None:
    """Write the manifest atomically, models sorted by name."""
    manifest = {**manifest, "models": dict(sorted(manifest["models"].items()))}
    text = json.dumps(manifest, indent=1).encode() + b"\n"
    write_atomically(path, lambda handle: handle.write(text))


def save_arrays(model, name: str, dtype: str, folder: Path) -> dict:
    """Write ``model``'s weights as ``NAME.npz`` in ``dtype``, atomically; return file, sha256, size."""
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype must be 'float16' or 'float32', got {dtype!r}.")
    arrays = {f"w{index:03d}": np.asarray(weight, dtype=dtype) for index, weight in enumerate(model.get_weights())}
    path = folder / f"{name}.npz"
    write_atomically(path, lambda handle: np.savez_compressed(handle, **arrays))
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{path.name} is {size / 1e6:.2f} MB; shipped files must stay under 5 MB.")
    return {"file": path.name, "sha256": sha256_file(path), "bytes": size, "dtype": dtype, "arrays": len(arrays)}


def same_to_three_digits(a: float, b: float) -> bool:
    return f"{a:.3g}" == f"{b:.3g}"


def train_one(name: str, folder: Path) -> dict:
    """Train recipe ``name`` in this process and write its weights; returns the manifest entry (child process)."""
    import keras

    from utils import models, preprocessing

    recipe = recipes.get(name)
    prepared = preprocessing.prepare_mnist()
    model, record = recipes.train(recipe, prepared, verbose=True)
    float32_metrics = recipes.evaluate(model, recipe, prepared)
    float32_weights = model.get_weights()
    model.set_weights([np.asarray(w, dtype=np.float16).astype(np.float32) for w in float32_weights])
    float16_metrics = recipes.evaluate(model, recipe, prepared)
    unchanged = all(same_to_three_digits(float32_metrics[k], float16_metrics[k]) for k in float32_metrics)
    if not unchanged:
        model.set_weights(float32_weights)
    stored = save_arrays(model, name, "float16" if unchanged else "float32", folder)
    versions = {"keras": keras.__version__, "backend": keras.backend.backend(), "numpy": np.__version__}
    versions[keras.backend.backend()] = __import__(keras.backend.backend()).__version__
    versions["python"] = platform.python_version()
    return {
        **stored,
        "description": recipe.description,
        "recipe": {
            "architecture_sha256": models.architecture_fingerprint(model),
            "parameters": model.count_params(),
            "settings": asdict(recipe.training_settings()),
            "denoising": recipe.denoising,
            "data": f"MNIST: {len(prepared.x_train):,} training and {len(prepared.x_val):,} validation images"
            + (f", noise sigma {recipes.DENOISING_SIGMA}" if recipe.denoising else ""),
            "seed": config.SEED,
        },
        "training": asdict(record),
        "metrics": {f"test_{key}": value for key, value in float16_metrics.items()}
        | {f"float32_test_{key}": value for key, value in float32_metrics.items()},
        "test_images": len(prepared.x_test),
        "versions": versions,
        "created": date.today().isoformat(),
    }


def manifest_table(manifest: dict) -> str:
    """The shipped models as Markdown: where each is taught, how it trained, its test metrics and its file."""
    from utils import metrics

    rows = []
    by_notebook = sorted(manifest["models"].items(), key=lambda item: (recipes.RECIPES[item[0]].notebook, item[0]))
    for name, entry in by_notebook:
        recipe = recipes.RECIPES[name]
        training = entry["training"]
        rows.append(
            {
                "model": f"`{name}`",
                "notebook": f"{recipe.notebook:02d}",
                "backend": recipe.backend,
                "epochs": len(training["history"]["loss"]),
                "training (min)": training["seconds"] / 60,
                "test MSE": entry["metrics"]["test_mse"],
                "PSNR (dB)": entry["metrics"]["test_psnr"],
                "SSIM": entry["metrics"]["test_ssim"],
                "file": f"{entry['bytes'] / 1e6:.2f} MB {entry['dtype']}",
            }
        )
    total = sum(entry["bytes"] for entry in manifest["models"].values())
    formats = {"training (min)": ".1f", "test MSE": ".5f", "PSNR (dB)": ".2f", "SSIM": ".4f"}
    return f"{metrics.markdown_table(rows, formats)}\n\n{len(rows)} files, {total / 1e6:.2f} MB in all."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=[], help="model names to retrain (default: all)")
    parser.add_argument("--output", type=Path, default=weights.WEIGHTS_DIR, help="folder for weights + manifest")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--table", action="store_true", help="print the manifest as a Markdown table")
    args = parser.parse_args()
    if args.table:
        print(manifest_table(weights.read_manifest(args.output.resolve() / weights.MANIFEST_PATH.name)))
        return 0
    folder = args.output.resolve()
    if config.quick_mode() and folder == weights.WEIGHTS_DIR:
        parser.error("quick mode (AE_QUICK=1) must not overwrite the shipped weights; pass --output")
    if args.child:
        print(json.dumps(train_one(args.child, folder)))
        return 0
    unknown = [name for name in args.only if name not in recipes.RECIPES]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {', '.join(recipes.RECIPES)}")
    names = args.only or list(recipes.RECIPES)
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / weights.MANIFEST_PATH.name
    manifest = weights.read_manifest(manifest_path)
    started = time.perf_counter()
    for name in names:
        recipe = recipes.get(name)
        print(f"==> {name} on {recipe.backend}: {recipe.description}", flush=True)
        env = {**os.environ, "KERAS_BACKEND": recipe.backend, "PYTHONHASHSEED": "0"}
        command = [sys.executable, __file__, "--child", name, "--output", str(folder)]
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=False)
        if done.returncode != 0:
            print(f"training {name} failed (exit code {done.returncode}); the manifest is unchanged.", file=sys.stderr)
            return 1
        lines = done.stdout.strip().splitlines()
        print("\n".join(lines[:-1]))
        manifest["models"][name] = json.loads(lines[-1])
        write_manifest(manifest, manifest_path)
        shipped = manifest["models"][name]
        print(
            f"    {shipped['file']}: {shipped['bytes'] / 1e6:.2f} MB {shipped['dtype']}, "
            f"test MSE {shipped['metrics']['test_mse']:.5f} (float32 {shipped['metrics']['float32_test_mse']:.5f}), "
            f"{shipped['training']['seconds']:.0f} s of training",
            flush=True,
        )
    total = sum(entry["bytes"] for entry in manifest["models"].values())
    print(f"\n{len(manifest['models'])} models, {total / 1e6:.2f} MB in all; {time.perf_counter() - started:.0f} s.")
    if total > MAX_TOTAL_BYTES:
        print("The shipped weights exceed 25 MB in all: use leaner models.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
