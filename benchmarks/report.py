"""The Markdown report of a benchmark's measurements (as saved in training_speed.json): the recipe table, the
time to the blog recipes' error, the peak, the ablations with their verdicts, and the goals.

Each cell is the median and the range over the rounds; an ablation is called better or worse only when its
range and its baseline's range do not overlap, and a goal is met only when every round meets it.
"""

from __future__ import annotations

import statistics

from benchmarks.runner import ABLATION_EPOCHS, ABLATIONS, CONV_ABLATION_EPOCHS, CONV_ABLATION_IMAGES, RECIPES

# The series' speed goals: the conv model's error within a training budget, the share of the matmul peak per
# backend, and how much sooner than the blog's deep recipe the series' model reaches that recipe's error.
CONV_TARGET_MSE = 0.0025
CONV_BUDGET_SECONDS = 600
PEAK_GOALS = {"jax": 0.70, "tensorflow": 0.50}
SOONER_GOAL = 10.0


def epoch_reaching(run: dict, target: float) -> int | None:
    """The first epoch (counted from 1) whose test MSE is at or below ``target`` (None if never)."""
    return next((epoch for epoch, mse in enumerate(run["test_mse"], 1) if mse <= target), None)


def time_to(run: dict, target: float) -> float | None:
    """Training seconds at the first epoch whose test MSE is at or below ``target`` (None if never)."""
    epoch = epoch_reaching(run, target)
    return None if epoch is None else run["train_seconds"][epoch - 1]


def spread(values: list[float], digits: str = ".1f", unit: str = "") -> str:
    """``median [min-max]`` of ``values``, or just the value when they all print the same."""
    if not values:
        return "n/a"
    median, low, high = (f"{value:{digits}}" for value in (statistics.median(values), min(values), max(values)))
    return f"{median}{unit}" if low == high else f"{median}{unit} [{low}-{high}]"


def verdict(variant: list[float], baseline: list[float], higher_is_better: bool = True) -> str:
    """Say "better" or "worse" only when the two ranges do not overlap; "within the noise" otherwise."""
    if len(variant) < 2 or len(baseline) < 2:
        return "too few runs for a verdict"
    if min(variant) > max(baseline):
        return "better" if higher_is_better else "worse"
    if max(variant) < min(baseline):
        return "worse" if higher_is_better else "better"
    return "within the noise"


def runs_of(measured: dict, kind: str, key: str, backend: str) -> list[dict]:
    """The runs of one job on one backend, in round order."""
    return [run for run in measured["runs"] if (run["kind"], run["key"], run["backend"]) == (kind, key, backend)]


def render(measured: dict) -> str:
    """The Markdown report of a set of measurements (as saved in training_speed.json)."""
    backends, repeats = measured["backends"], measured["repeats"]
    lines = [
        f"Training-speed benchmark, {measured['date']}, "
        + (
            "quick mode (subsets, 2 epochs: not a result)"
            if measured["quick"]
            else "full MNIST (50,000 training images)"
        ),
        f"CPU: {measured['cpu']}, {measured['cores']} cores; "
        + ", ".join(f"{name} {version}" for name, version in measured["versions"].items()),
        f"{repeats} round(s), interleaved; each cell is the median [min-max] over the rounds.",
    ]
    recipe_keys = [key for key in RECIPES if any(run["key"] == key for run in measured["runs"])]
    peaks = {
        backend: [
            run["peak_gflops"] for run in measured["runs"] if run["backend"] == backend and run.get("peak_gflops")
        ]
        for backend in backends
    }
    if recipe_keys:
        lines += [
            "",
            "| recipe | backend | epochs | final test MSE | train s | images/s | GFLOP/s | % of peak |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for key in recipe_keys:
            for backend in backends:
                runs = runs_of(measured, "recipe", key, backend)
                if not runs:
                    continue
                share = [100 * run["gflops"] / run["peak_gflops"] for run in runs if run.get("peak_gflops")]
                lines.append(
                    f"| {RECIPES[key].label} | {backend} | {spread([run['epochs'] for run in runs], '.0f')} | "
                    f"{spread([run['final_mse'] for run in runs], '.5f')} | "
                    f"{spread([run['seconds'] for run in runs])} | "
                    f"{spread([run['images_per_second'] for run in runs], ',.0f')} | "
                    f"{spread([run['gflops'] for run in runs])} | {spread(share, '.0f', '%')} |"
                )
        lines += ["", *render_targets(measured, backends)]
    clock = measured.get("clock_estimate_gflops")
    lines += [
        f"fp32 peak, measured before and after each recipe run (2048x2048 matmul, best of "
        f"{measured['peak_windows']} windows, the higher of the two): "
        + "; ".join(f"{backend} {spread(values, '.0f')} GFLOP/s" for backend, values in peaks.items() if values)
        + (
            f". Clock-based estimate: {clock:.0f} GFLOP/s ({measured['cores']} cores x "
            f"{measured['mhz']:.0f} MHz as /proc/cpuinfo reports it x FLOPs per cycle)."
            if clock
            else "."
        )
    ]
    ablation_keys = [key for key in ABLATIONS if any(run["key"] == key for run in measured["runs"])]
    if ablation_keys:
        lines += ["", *render_ablations(measured, backends, ablation_keys)]
    if recipe_keys:
        lines += ["", *render_goals(measured, backends)]
    if measured.get("seconds"):
        lines += ["", f"Whole benchmark: {measured['seconds'] / 60:.1f} minutes."]
    return "\n".join(lines)


def render_targets(measured: dict, backends: list[str]) -> list[str]:
    """Time for the series' model to reach each blog recipe's final test MSE, per backend, per round."""
    lines = []
    for key in ("blog_shallow", "blog_deep"):
        for backend in backends:
            ratios, series_times, blog_times, targets = pair_times(measured, key, backend, backend)
            if not targets:
                continue
            lines.append(
                f"| {RECIPES[key].label.split(':')[0]} | {backend} | {spread(targets, '.5f')} | "
                f"{spread([t for t in series_times if t is not None])} | {spread(blog_times)} | "
                f"{format_ratios(ratios, targets)} |"
            )
    header = [
        "| time to the blog recipe's final test MSE | backend | target | series s | blog s | blog / series |",
        "|---|---|---|---|---|---|",
    ]
    return [*header, *lines, ""] if lines else []


def paired_runs(measured: dict, blog: str, series_backend: str, blog_backend: str) -> list[tuple[dict, dict]]:
    """``(series run, blog run)`` of every round that has both."""
    series = {run["round"]: run for run in runs_of(measured, "recipe", "series", series_backend)}
    blog_runs = runs_of(measured, "recipe", blog, blog_backend)
    return [(series[run["round"]], run) for run in blog_runs if run["round"] in series]


def pair_times(measured: dict, blog: str, series_backend: str, blog_backend: str):
    """Per round: the blog run's final MSE, its time to it, and the series' time to it (None if never)."""
    ratios, series_times, blog_times, targets = [], [], [], []
    for series_run, run in paired_runs(measured, blog, series_backend, blog_backend):
        target = run["test_mse"][-1]
        ours, theirs = time_to(series_run, target), time_to(run, target)
        targets.append(target)
        blog_times.append(theirs)
        series_times.append(ours)
        if ours is not None:
            ratios.append(theirs / ours)
    return ratios, series_times, blog_times, targets


def format_ratios(ratios: list[float], targets: list) -> str:
    """The ratios' spread, or how many rounds never reached the target."""
    if len(ratios) < len(targets):
        return f"not reached in {len(targets) - len(ratios)} of {len(targets)} rounds"
    return spread(ratios, ".1f", "x")


def cpu_per_image(run: dict) -> float | None:
    """CPU seconds per training image of a run (None for records without CPU time)."""
    if not run.get("cpu_seconds"):
        return None
    return run["cpu_seconds"] / (run["images_per_second"] * run["seconds"])


def render_ablations(measured: dict, backends: list[str], keys: list[str]) -> list[str]:
    """The ablation table: each variant next to its baseline, paired by round."""
    lines = [
        f"Ablations: one change at a time, in short runs interleaved with their baseline. Dense runs: "
        f"{ABLATION_EPOCHS} epochs (the cosine schedule decays over them), baseline 'dense model as is'. Conv runs: "
        f"{CONV_ABLATION_EPOCHS} epochs on {CONV_ABLATION_IMAGES:,} images, baseline TensorFlow without XLA. "
        "Speed is images/s of the whole run; 'better' or 'worse' only when the ranges do not overlap. The CPU "
        "ratio compares CPU seconds (all threads) per image, paired by round: it moves less than wall time "
        "when other programs share the cores, but it cannot see time lost waiting.",
        "",
        "| variant | backend | images/s | baseline images/s | ratio | speed | CPU ratio | test MSE | "
        "baseline test MSE |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for key in keys:
        job = ABLATIONS[key]
        if key == job.baseline:
            continue
        for backend in backends:
            runs = runs_of(measured, "ablation", key, backend)
            if not runs:
                continue
            base_kind = "recipe" if job.baseline in RECIPES else "ablation"
            base_backend = job.baseline_backend or backend
            baseline = {run["round"]: run for run in runs_of(measured, base_kind, job.baseline, base_backend)}
            paired = [(run, baseline[run["round"]]) for run in runs if run["round"] in baseline]
            speed = [run["images_per_second"] for run in runs]
            base_speed = [base["images_per_second"] for _, base in paired]
            ratios = [run["images_per_second"] / base["images_per_second"] for run, base in paired]
            cpu_ratios = [
                cpu_per_image(base) / cpu_per_image(run)
                for run, base in paired
                if cpu_per_image(run) and cpu_per_image(base)
            ]
            mse, base_mse = [run["final_mse"] for run in runs], [base["final_mse"] for _, base in paired]
            lines.append(
                f"| {job.label} | {backend} | {spread(speed, ',.0f')} | {spread(base_speed, ',.0f')} | "
                f"{spread(ratios, '.2f', 'x')} | {verdict(speed, base_speed)} | {spread(cpu_ratios, '.2f', 'x')} | "
                f"{spread(mse, '.5f')} | {spread(base_mse, '.5f')} |"
            )
        if job.note:
            notes.append(f"- {job.label}: {job.note}.")
    return lines + ([""] + notes if notes else [])


def what_sooner_needs(measured: dict, series_backend: str, blog_backend: str) -> str:
    """Where the series reaches the deep blog recipe's error, what the goal asks, and its first epoch's time."""
    pairs = paired_runs(measured, "blog_deep", series_backend, blog_backend)
    reached = [epoch_reaching(ours, theirs["test_mse"][-1]) for ours, theirs in pairs]
    epochs = spread([epoch for epoch in reached if epoch], ".0f") if any(reached) else "never"
    asked = spread([time_to(theirs, theirs["test_mse"][-1]) / SOONER_GOAL for _, theirs in pairs], ".1f", " s")
    first = spread([ours["train_seconds"][0] for ours, _ in pairs], ".1f", " s")
    return f"the series gets there in epoch {epochs}; the goal asks for {asked}, and its first epoch (compilation included) takes {first}"


def render_goals(measured: dict, backends: list[str]) -> list[str]:
    """The series' three speed goals, each with its measured value; "met" only if every round meets it."""
    lines = ["Goals (met only when every round meets them):"]
    for series_backend in backends:
        for blog_backend in backends:
            ratios, _, _, targets = pair_times(measured, "blog_deep", series_backend, blog_backend)
            if targets:
                met = len(ratios) == len(targets) and min(ratios) >= SOONER_GOAL
                lines.append(
                    f"- Reach the blog deep recipe's final test MSE {SOONER_GOAL:.0f}x sooner, series on "
                    f"{series_backend}, blog on {blog_backend}: {format_ratios(ratios, targets)}; "
                    f"{what_sooner_needs(measured, series_backend, blog_backend)} -> "
                    f"{'met' if met else 'not met'}."
                )
    for backend in backends:
        runs = runs_of(measured, "recipe", "series", backend)
        share = [run["gflops"] / run["peak_gflops"] for run in runs if run.get("peak_gflops")]
        if share and backend in PEAK_GOALS:
            lines.append(
                f"- Whole dense training run at >= {100 * PEAK_GOALS[backend]:.0f}% of the measured fp32 matmul "
                f"peak, {backend}: {spread([100 * s for s in share], '.0f', '%')} -> "
                f"{'met' if min(share) >= PEAK_GOALS[backend] else 'not met'}."
            )
    for backend in backends:
        for run in runs_of(measured, "recipe", "conv", backend):
            reached = time_to(run, CONV_TARGET_MSE)
            in_budget = [
                mse
                for seconds, mse in zip(run["train_seconds"], run["test_mse"], strict=True)
                if seconds <= CONV_BUDGET_SECONDS
            ]
            best = f"best test MSE {min(in_budget):.5f} within the budget" if in_budget else "no epoch within it"
            lines.append(
                f"- Conv model at test MSE <= {CONV_TARGET_MSE} within {CONV_BUDGET_SECONDS / 60:.0f} minutes, "
                f"{backend} ({run['seconds'] / run['epochs']:.1f} s per epoch): {best}, "
                + (f"{CONV_TARGET_MSE} reached after {reached:.0f} s" if reached else f"{CONV_TARGET_MSE} not reached")
                + (" -> met." if reached and reached <= CONV_BUDGET_SECONDS else " -> not met.")
            )
    return lines
