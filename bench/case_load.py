"""Case 5: code-location load against `python -c "import dagster"`.

Three commands alternate, each a fresh process timed from outside (wall time):
- `import dagster`: the floor any Dagster code location pays;
- `defs()`: import `lakehouse_assets.definitions` and build the Definitions (contracts -> assets);
- `dagster definitions validate -m lakehouse_assets.definitions`: what the target names.
The headline is the median over repetitions of (validate - import dagster), taken within each
repetition. Each command's CPU time (user + system, from the kernel's accounting of the waited
child) is reported beside its wall time: on a busy machine wall time mostly measures the queue.
`python -X importtime` then shows which packages the code location adds on top of Dagster, by their
own import time.

With LAKEHOUSE_BENCH_LOAD_BASELINE=<another checkout of the project>, `definitions validate` of that
checkout (run from its folder, first on PYTHONPATH) alternates with the others in the same run:
before and after a change, side by side.
"""

import collections
import os
import re
import resource
import statistics
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


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(quick: bool = False, repeats: int | None = None) -> dict:
    repeats = repeats or (2 if quick else 7)
    dagster = str(Path(sys.executable).with_name("dagster"))
    baseline = os.environ.get("LAKEHOUSE_BENCH_LOAD_BASELINE")
    with tempfile.TemporaryDirectory(prefix="bench-case5-") as directory:
        home = Path(directory)
        (home / "dagster").mkdir()
        (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = child_env(LAKEHOUSE_HOME=str(home / "lakehouse"), DAGSTER_HOME=str(home / "dagster"))

        def command(argv: list[str], command_env: dict = env, cwd: Path | None = None):
            def measure():
                cpu_before = _cpu_s()
                result = run_child(argv, env=command_env, timeout=300, cwd=cwd)
                return result.wall_s, {"peak_rss_mib": result.peak_rss_mib, "cpu_s": _cpu_s() - cpu_before}

            return measure

        validate = [dagster, "definitions", "validate", "-m", "lakehouse_assets.definitions"]
        variants = {
            "import dagster": command([sys.executable, "-c", "import dagster"]),
            "defs()": command(
                [sys.executable, "-c", "from lakehouse_assets.definitions import defs; defs()"]
            ),
            "definitions validate": command(validate),
        }
        if baseline:
            baseline_env = {**env, "PYTHONPATH": os.pathsep.join([baseline, env["PYTHONPATH"]])}
            # from its folder too: `-m` puts the working directory first on sys.path
            variants["definitions validate (baseline)"] = command(validate, baseline_env, Path(baseline))
        pairs = alternate(variants, repeats, "case 5")
        log("case 5: import breakdown")
        breakdown = import_breakdown(env)
    cpu = {name: [extra["cpu_s"] for extra in pairs.extra[name]] for name in pairs.names}

    def cpu_differences(minuend: str, subtrahend: str) -> list[float]:
        return [a - b for a, b in zip(cpu[minuend], cpu[subtrahend], strict=True)]

    extra = pairs.difference("definitions validate", "import dagster")
    extra_cpu = statistics.median(cpu_differences("definitions validate", "import dagster"))
    own = pairs.difference("defs()", "import dagster")
    rows = [
        "| command | median wall s | median CPU s | wall runs s | CPU runs s |",
        "|---|---:|---:|---|---|",
    ]
    for name in pairs.names:
        rows.append(
            f"| {name} | {fmt_s(pairs.median(name))} | {fmt_s(statistics.median(cpu[name]))} "
            f"| {fmt_list(pairs.runs[name])} | {fmt_list(cpu[name])} |"
        )
    total_extra = sum(seconds for _, seconds in breakdown)
    top = ", ".join(f"{name} {seconds * 1000:.0f}" for name, seconds in breakdown[:12])
    baseline_lines = ""
    if baseline:
        before = pairs.difference("definitions validate (baseline)", "import dagster")
        before_cpu = statistics.median(cpu_differences("definitions validate (baseline)", "import dagster"))
        baseline_lines = f"""- baseline (`{baseline}`) validate - import dagster, per repetition: wall
  {fmt_list(pairs.differences("definitions validate (baseline)", "import dagster"))} s, CPU
  {fmt_list(cpu_differences("definitions validate (baseline)", "import dagster"))} s
  -> median **{before:+.2f} s** wall, **{before_cpu:+.2f} s** CPU
"""
    markdown = f"""
{repeats} repetitions, the commands alternating (order reversed every other repetition).

{chr(10).join(rows)}

- validate - import dagster, per repetition: wall {fmt_list(pairs.differences("definitions validate", "import dagster"))} s,
  CPU {fmt_list(cpu_differences("definitions validate", "import dagster"))} s
  -> median **{extra:+.2f} s** wall, **{extra_cpu:+.2f} s** CPU (target < +1.0 s)
{baseline_lines}- defs() - import dagster (our imports + building the assets, no CLI): median {own:+.2f} s wall

What the code location imports on top of `import dagster` (own import time in ms by top-level
package, one `python -X importtime` run, {total_extra:.2f} s in all): {top}.
"""
    return {
        "markdown": markdown,
        "headlines": [
            {
                "case": "5 code-location load - import dagster",
                "measured": f"{extra:+.2f} s wall, {extra_cpu:+.2f} s CPU",
                "target": "< +1.0 s",
                "ok": extra < 1.0,
            }
        ],
        "raw": {"runs": pairs.runs, "cpu": cpu, "breakdown": breakdown},
    }


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(HERE.parent.parent))
    sys.stdout.write(run(quick="--quick" in sys.argv)["markdown"])
