"""Case 6: engine memory as partitions grow, measured with bench/engines.py.

Landing -> raw -> staging for one flights partition scaled 1x..Nx, on pandas and on Spark, each a
fresh process whose process-tree peak RSS is sampled. The same figures are written to
bench/ENGINES.md (which the README cites for the default threshold).
"""

import os
import sys
from pathlib import Path

import engines
from harness import REPO, log

HERE = Path(__file__).resolve()


def run(quick: bool = False, repeats: int | None = None) -> dict:
    scales = [int(s) for s in os.environ.get("LAKEHOUSE_BENCH_ENGINE_SCALES", "").split()] or (
        [1, 10] if quick else [1, 100, 400]
    )
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    results = []
    for scale in scales:
        for engine in ("pandas", "spark"):
            results.append(engines.measure(scale, engine))
            log(f"case 6 {scale}x {engine}: {results[-1]}")
    command = "PYTHONPATH=. .venv/bin/python bench/engines.py --scales " + " ".join(map(str, scales))
    text = engines.report(results, command)
    if not quick:
        (REPO / "bench" / "ENGINES.md").write_text(text)
    spark = [item for item in results if item["engine"] == "spark"]
    pandas = [item for item in results if item["engine"] == "pandas"]
    growth = spark[-1]["peak_rss_mib"] / spark[0]["peak_rss_mib"]
    pandas_growth = pandas[-1]["peak_rss_mib"] / pandas[0]["peak_rss_mib"]
    table = text.split("\n\n", 3)[-1]
    markdown = f"""
From `bench/engines.py` (one run per cell; memory is not noisy the way time is):

{table.strip()}

- Spark peak RSS, {scales[-1]}x / {scales[0]}x: **{growth:.2f}x** (flat: taken here as <= 1.25x); pandas: {pandas_growth:.2f}x.
"""
    return {
        "markdown": markdown,
        "headlines": [
            {
                "case": f"6 Spark peak memory {scales[-1]}x vs {scales[0]}x",
                "measured": f"{growth:.2f}x",
                "target": "flat (<= 1.25x)",
                "ok": growth <= 1.25,
            }
        ],
        "raw": {"results": results},
    }


if __name__ == "__main__":
    sys.stdout.write(run(quick="--quick" in sys.argv)["markdown"])
