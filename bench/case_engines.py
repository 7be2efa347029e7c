"""Case 6: engine memory as partitions grow, measured with bench/engines.py.

Landing -> raw -> staging for one flights partition scaled 1x..Nx, on pandas and on Spark, each a
fresh process whose process-tree peak RSS is sampled. The figures go into
the report (bench/ENGINES.md, which the README cites, is engines.py's own output and is left to it).
Set LAKEHOUSE_BENCH_ENGINES_FROM=path/to/ENGINES.md to reuse a report engines.py already wrote.
"""

import os
import sys
from pathlib import Path

import engines
from harness import REPO, log

HERE = Path(__file__).resolve()


def parse_report(text: str) -> list[dict]:
    """The rows of a report that bench/engines.py wrote."""
    results = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0].endswith("x") and cells[0][:-1].isdigit():
            results.append(
                {
                    "scale": int(cells[0][:-1]),
                    "rows": int(cells[1].replace(",", "")),
                    "csv_bytes": float(cells[2]) * 2**20,
                    "engine": cells[3],
                    "materialise_s": float(cells[4]),
                    "process_s": float(cells[5]),
                    "peak_rss_mib": int(cells[6].replace(",", "")),
                }
            )
    return results


def run(quick: bool = False, repeats: int | None = None) -> dict:
    scales = [int(s) for s in os.environ.get("LAKEHOUSE_BENCH_ENGINE_SCALES", "").split()] or (
        [1, 10] if quick else [1, 100, 400]
    )
    reused = os.environ.get("LAKEHOUSE_BENCH_ENGINES_FROM")
    if reused:
        # engines.py measures memory, which machine load hardly moves: its own report can be reused
        text = Path(reused).read_text()
        results = parse_report(text)
        scales = sorted({item["scale"] for item in results})
        source = (
            f"reused from `{reused}` (written by bench/engines.py; its command and date are in that file)"
        )
    else:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
        results = []
        for scale in scales:
            for engine in ("pandas", "spark"):
                results.append(engines.measure(scale, engine))
                log(f"case 6 {scale}x {engine}: {results[-1]}")
        command = "PYTHONPATH=. .venv/bin/python bench/engines.py --scales " + " ".join(map(str, scales))
        text = engines.report(results, command)
        source = "measured in this run by `bench/engines.py`'s own functions"
    spark = [item for item in results if item["engine"] == "spark"]
    pandas = [item for item in results if item["engine"] == "pandas"]
    growth = spark[-1]["peak_rss_mib"] / spark[0]["peak_rss_mib"]
    pandas_growth = pandas[-1]["peak_rss_mib"] / pandas[0]["peak_rss_mib"]
    table = "\n".join(line for line in text.splitlines() if line.startswith("|"))
    markdown = f"""
Landing -> raw -> staging for one flights partition, {source}; one run per cell (memory is not
noisy the way time is):

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
