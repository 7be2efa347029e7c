"""Case 5: code-location load against `python -c "import dagster"`.

Three commands alternate, each a fresh process timed from outside (wall time):
- `import dagster`: the floor any Dagster code location pays;
- `defs()`: import `lakehouse_assets.definitions` and build the Definitions (contracts -> assets);
- `dagster definitions validate -m lakehouse_assets.definitions`: what the target names.
The headline is the median over repetitions of (validate - import dagster), taken within each
repetition. `python -X importtime` then shows which packages the code location adds on top of
Dagster, by their own import time.
"""

import collections
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import alternate, child_env, fmt_list, fmt_s, log, run_child

HERE = Path(__file__).resolve()


def import_breakdown(env: dict) -> list[tuple[str, float]]:
    """Own import time by top-level package for what `lakehouse_assets.definitions` imports after dagster."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import dagster; import lakehouse_assets.definitions"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = completed.stderr.splitlines()
    by_package: dict[str, float] = collections.defaultdict(float)
    after_dagster = False
    for line in lines:
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not match:
            continue
        self_us, _, indent, name = match.groups()
        if not after_dagster:
            if name == "dagster" and indent == " ":
                after_dagster = True
            continue
        by_package[name.split(".")[0]] += int(self_us) / 1e6
    return sorted(by_package.items(), key=lambda item: -item[1])


def run(quick: bool = False, repeats: int | None = None) -> dict:
    repeats = repeats or (2 if quick else 7)
    dagster = str(Path(sys.executable).with_name("dagster"))
    with tempfile.TemporaryDirectory(prefix="bench-case5-") as directory:
        home = Path(directory)
        (home / "dagster").mkdir()
        (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = child_env(LAKEHOUSE_HOME=str(home / "lakehouse"), DAGSTER_HOME=str(home / "dagster"))

        def command(argv: list[str]):
            def measure():
                result = run_child(argv, env=env, timeout=300)
                return result.wall_s, {"peak_rss_mib": result.peak_rss_mib}

            return measure

        pairs = alternate(
            {
                "import dagster": command([sys.executable, "-c", "import dagster"]),
                "defs()": command(
                    [sys.executable, "-c", "from lakehouse_assets.definitions import defs; defs()"]
                ),
                "definitions validate": command(
                    [dagster, "definitions", "validate", "-m", "lakehouse_assets.definitions"]
                ),
            },
            repeats,
            "case 5",
        )
        log("case 5: import breakdown")
        breakdown = import_breakdown(env)
    extra = pairs.difference("definitions validate", "import dagster")
    own = pairs.difference("defs()", "import dagster")
    rows = ["| command | median s | runs s |", "|---|---:|---|"]
    for name in pairs.names:
        rows.append(f"| {name} | {fmt_s(pairs.median(name))} | {fmt_list(pairs.runs[name])} |")
    total_extra = sum(seconds for _, seconds in breakdown)
    top = ", ".join(f"{name} {seconds * 1000:.0f}" for name, seconds in breakdown[:12])
    markdown = f"""
{repeats} repetitions, the three commands alternating (order reversed every other repetition).

{chr(10).join(rows)}

- validate - import dagster, per repetition: {fmt_list(pairs.differences("definitions validate", "import dagster"))} s
  -> median **{extra:+.2f} s** (target < +1.5 s)
- defs() - import dagster (our imports + building the assets, no CLI): median {own:+.2f} s

What the code location imports on top of `import dagster` (own import time in ms by top-level
package, one `python -X importtime` run, {total_extra:.2f} s in all): {top}.
"""
    return {
        "markdown": markdown,
        "headlines": [
            {
                "case": "5 code-location load - import dagster",
                "measured": f"{extra:+.2f} s",
                "target": "< +1.5 s",
                "ok": extra < 1.5,
            }
        ],
        "raw": {"runs": pairs.runs, "breakdown": breakdown},
    }


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(HERE.parent.parent))
    sys.stdout.write(run(quick="--quick" in sys.argv)["markdown"])
