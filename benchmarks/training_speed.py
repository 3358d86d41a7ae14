"""Training speed per Keras backend: time to the Keras blog recipes' error, images/s and % of the fp32 peak.

    python benchmarks/training_speed.py     # 3 rounds, both backends, every recipe, the default ablations
    python benchmarks/training_speed.py --backends jax --recipes series,blog_deep --ablations none --repeats 1
    python benchmarks/training_speed.py --recipes none --ablations batch_250,spe_20  # ablations only
    python benchmarks/training_speed.py --render outputs/benchmarks/training_speed.json
    AE_QUICK=1 python benchmarks/training_speed.py   # a smoke run on subsets (2 epochs), for the tests

Every run is a fresh child process with ``KERAS_BACKEND`` set, so that no backend, thread or precision setting
leaks between runs, and runs go one after another so that no two compete for the cores. Runs are interleaved:
round 1 runs every job once on every backend, then round 2 does the same, and so on, so that a slow spell of a
shared machine hits all jobs alike. Each number is reported as the median and the range over the rounds, and
an ablation is called better or worse only when its range and its baseline's range do not overlap.

Each recipe run measures the fp32 peak of its backend with a 2048x2048 matmul before and after training, and
"% of peak" is taken against the higher of the two. The work counted is the matrix products actually done:
the forward pass, the weight gradients and the input gradients of every weighted layer but the first (nothing
asks for the gradient of the pixels), plus the forward pass over the validation set. Times are wall-clock
seconds of the whole training call (compilation, validation and the notebooks' callbacks included); only the
test-set evaluation after every epoch, which the benchmark adds in order to find the time to a target, is left
out. The report is a Markdown table on stdout and in outputs/benchmarks/ (Markdown and JSON, written whole).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import report, runner  # noqa: E402
from benchmarks.runner import ABLATIONS, BACKENDS, RECIPES  # noqa: E402
from utils import config  # noqa: E402
from utils.files import write_atomically  # noqa: E402


def choose(text: str, known: dict | tuple, what: str, parser: argparse.ArgumentParser) -> list[str]:
    """Parse a comma-separated choice ('all', 'none' and for jobs 'default' allowed) or stop with a message."""
    if text == "all":
        return list(known)
    if text == "default" and isinstance(known, dict):
        return [key for key, job in known.items() if job.in_default]
    if text == "none":
        return []
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in known]
    if unknown:
        parser.error(f"unknown {what} {unknown}; choose from {', '.join(known)}")
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--backends", default="all", help=f"comma-separated, from {', '.join(BACKENDS)}")
    parser.add_argument("--recipes", default="all", help=f"comma-separated, 'all' or 'none', from {', '.join(RECIPES)}")
    parser.add_argument(
        "--ablations",
        default="default",
        help=f"comma-separated, 'default', 'all' or 'none', from {', '.join(ABLATIONS)}",
    )
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--render", metavar="JSON", help="only print the report of a saved training_speed.json")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(runner.run_job(json.loads(args.child))))
        return 0
    if args.render:
        print(report.render(json.loads(Path(args.render).read_text())))
        return 0
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    backends = choose(args.backends, BACKENDS, "backends", parser)
    recipes = choose(args.recipes, RECIPES, "recipes", parser)
    ablations = runner.needed_ablations(choose(args.ablations, ABLATIONS, "ablations", parser), backends)
    recipes = runner.needed_recipes(recipes, ablations)
    if not backends:
        parser.error("--backends must name at least one backend")

    measured = runner.measure(backends, recipes, ablations, args.repeats)
    table = report.render(measured)
    print("\n" + table)
    out = config.output_dir("benchmarks") / "training_speed.md"
    write_atomically(out.with_suffix(".json"), lambda handle: handle.write(json.dumps(measured, indent=1).encode()))
    write_atomically(out, lambda handle: handle.write(table.encode() + b"\n"))
    print(f"\nwritten to {out} (measurements in {out.with_suffix('.json').name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
