"""Make sure MNIST is available offline, and say how long it took (`make setup` runs this)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from utils import data  # noqa: E402

if __name__ == "__main__":
    start = time.perf_counter()
    try:
        dataset = data.load_mnist()
    except data.DataUnavailableError as error:
        raise SystemExit(str(error)) from None
    print(
        f"MNIST ready: {len(dataset[0][0])} training and {len(dataset[1][0])} test images, "
        f"content sha256 {data.content_sha256(dataset)[:12]}..., {time.perf_counter() - start:.1f} s"
    )
