"""Side-by-side benchmarks with the peers (issue 7): runs the cases and writes bench/REPORT.md.

Every measured variant runs in a child process of its own (fresh imports, fresh catalog, peak
memory of the process tree sampled from outside, as in bench/engines.py). Variants that are
compared run in pairs inside one repetition, in alternating order (A B, B A, A B, ...), and the
figure reported for a comparison is the median of the per-pair ratios, so that load that drifts
during the run cancels instead of biasing one side.

    PYTHONPATH=. .venv/bin/python bench/harness.py --out bench/REPORT.md          # the report
    PYTHONPATH=. .venv/bin/python bench/harness.py --quick --cases 1 2            # a smoke test

The dagster-iceberg peer needs pyiceberg < 0.12, so it lives in a virtualenv of its own, created
on first use (see `peer_python`; LAKEHOUSE_BENCH_PEER_VENV moves it).

Sizes can be changed without editing: LAKEHOUSE_BENCH_UPSERT_ROWS / _UPSERT_TIMEOUT (case 3),
LAKEHOUSE_BENCH_BACKFILL_END / _BACKFILL_REPEATS / _BACKFILL_STORAGES (sqlite,postgresql) /
_BACKFILL_SIZING (setting or contract) (case 4), LAKEHOUSE_BENCH_ENGINE_SCALES (case 6),
LAKEHOUSE_BENCH_COMPACTION_DAYS / _APPENDS / _ROWS (case 7).
"""

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

from engines import peak_tree_rss  # noqa: E402

PEER_VENV = Path(os.environ.get("LAKEHOUSE_BENCH_PEER_VENV", "/tmp/venv-dagster-iceberg"))
# The peer gets the same pandas and pyarrow as the project, so only the IO managers differ.
PEER_REQUIREMENTS = (
    "dagster-iceberg[pandas]",
    f"pandas=={importlib.metadata.version('pandas')}",
    f"pyarrow=={importlib.metadata.version('pyarrow')}",
)
PACKAGES = (
    "dagster",
    "pyiceberg",
    "pyiceberg-core",
    "pyarrow",
    "pandas",
    "narwhals",
    "pyspark",
    "sqlalchemy",
)


class ChildFailed(RuntimeError):
    pass


@dataclass
class ChildResult:
    """What a child printed as its last stdout line (JSON), plus wall time and peak tree RSS."""

    data: dict
    wall_s: float
    peak_rss_mib: float
    timed_out: bool = False


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("PYTHONHASHSEED", "0")
    env.update(extra)
    return env


def run_child(
    command: Sequence[str], env: dict | None = None, timeout: float | None = None, cwd: Path | None = None
) -> ChildResult:
    """Run a measuring child; its last stdout line is a JSON object. A timeout is a result, not an error."""
    started = time.perf_counter()
    # Files, not pipes: a child that logs more than a pipe holds would block until it is read.
    stdout_file, stderr_file = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # noqa: SIM115
    process = subprocess.Popen(
        list(command), env=env or child_env(), cwd=cwd or REPO, stdout=stdout_file, stderr=stderr_file
    )
    timed_out = False
    if timeout is not None:
        import threading

        def kill_late() -> None:
            nonlocal timed_out
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                for member in psutil.Process(process.pid).children(recursive=True):
                    member.kill()
                process.kill()

        threading.Thread(target=kill_late, daemon=True).start()
    peak, wall = peak_tree_rss(process)
    stdout_file.seek(0)
    stderr_file.seek(0)
    stdout = stdout_file.read().decode(errors="replace")
    stderr = stderr_file.read().decode(errors="replace")
    stdout_file.close()
    stderr_file.close()
    if timed_out:
        return ChildResult({}, time.perf_counter() - started, peak / 2**20, timed_out=True)
    if process.returncode != 0:
        raise ChildFailed(f"{shlex.join(command)} failed ({process.returncode}):\n{stderr[-3000:]}")
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    data = json.loads(lines[-1]) if lines else {}
    return ChildResult(data, wall, peak / 2**20)


def log(message: str) -> None:
    sys.stderr.write(f"[{dt.datetime.now(dt.UTC):%H:%M:%S}] {message}\n")
    sys.stderr.flush()


@dataclass
class Pairs:
    """Repeated alternating runs of named variants; ratios are taken within each repetition."""

    names: list[str]
    runs: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, list[dict]] = field(default_factory=dict)

    def add(self, name: str, seconds: float, extra: dict | None = None) -> None:
        self.runs.setdefault(name, []).append(seconds)
        self.extra.setdefault(name, []).append(extra or {})

    def median(self, name: str) -> float:
        return statistics.median(self.runs[name])

    def ratios(self, numerator: str, denominator: str) -> list[float]:
        return [a / b for a, b in zip(self.runs[numerator], self.runs[denominator], strict=True) if b > 0]

    def ratio(self, numerator: str, denominator: str) -> float:
        return statistics.median(self.ratios(numerator, denominator))

    def differences(self, minuend: str, subtrahend: str) -> list[float]:
        return [a - b for a, b in zip(self.runs[minuend], self.runs[subtrahend], strict=True)]

    def difference(self, minuend: str, subtrahend: str) -> float:
        return statistics.median(self.differences(minuend, subtrahend))


def alternate(variants: dict[str, Callable[[], tuple[float, dict]]], repeats: int, label: str) -> Pairs:
    """Run every variant once per repetition, the order reversed on every other repetition."""
    pairs = Pairs(list(variants))
    order = list(variants)
    for repeat in range(repeats):
        for name in order if repeat % 2 == 0 else reversed(order):
            seconds, extra = variants[name]()
            pairs.add(name, seconds, extra)
            log(f"{label} #{repeat + 1} {name}: {seconds:.3f} s")
    return pairs


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


def fmt_list(values: Sequence[float], digits: int = 2) -> str:
    return ", ".join(f"{value:.{digits}f}" for value in values)


def verdict(ok: bool | None) -> str:
    return {True: "**met**", False: "**missed**", None: "n/a"}[ok]


def machine_info() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "-"
    frequency = psutil.cpu_freq()
    cpu_model = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu_model,
        "cores": os.cpu_count(),
        "cpu_mhz": round(frequency.current) if frequency else None,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "packages": versions,
    }


def load_average() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def peer_python() -> Path:
    """The dagster-iceberg virtualenv's interpreter, created when missing:

    python3 -m venv /tmp/venv-dagster-iceberg
    /tmp/venv-dagster-iceberg/bin/pip install 'dagster-iceberg[pandas]' pandas==<ours> pyarrow==<ours>
    """
    python = PEER_VENV / "bin" / "python"
    wanted = {requirement.split("==")[0].split("[")[0]: requirement for requirement in PEER_REQUIREMENTS}
    if python.exists():
        probe = subprocess.run(
            [
                str(python),
                "-c",
                "import dagster_iceberg, pandas, pyarrow; print(pandas.__version__, pyarrow.__version__)",
            ],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.split() == [
            importlib.metadata.version("pandas"),
            importlib.metadata.version("pyarrow"),
        ]:
            return python
    log(f"creating the dagster-iceberg virtualenv at {PEER_VENV}")
    base = os.environ.get("LAKEHOUSE_BENCH_BASE_PYTHON", "python3")
    if not python.exists():
        subprocess.run([base, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *wanted.values()], check=True)
    return python


def peer_versions(python: Path) -> dict:
    code = (
        "import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in "
        "('dagster-iceberg', 'dagster', 'pyiceberg', 'pyarrow', 'pandas')}))"
    )
    return json.loads(
        subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout
    )


def render(
    command: str,
    started: dt.datetime,
    machine: dict,
    loads: list[str],
    headlines: list[dict],
    sections: list[str],
    done: bool,
) -> str:
    finished = dt.datetime.now(dt.UTC)
    lines = [
        "# Benchmarks side by side with the peers (issue 7)",
        "",
        f"Command (from the repository root): `{command}`",
        "",
        f"Run: {started:%Y-%m-%d %H:%M}–{finished:%H:%M} UTC{'' if done else ' (interrupted: partial)'}. "
        f"Machine: {machine['cpu']}, {machine['cores']} cores, "
        f"{machine['memory_gib']} GiB, {machine['platform']}, Python {machine['python']}.",
        "",
        "Packages: " + ", ".join(f"{name} {version}" for name, version in machine["packages"].items()) + ".",
        "",
        "Load average (1, 5, 15 min): " + "; ".join(loads) + ".",
        "",
        f"The dagster-iceberg peer runs in `{PEER_VENV}`, which the harness creates when it is missing: "
        f"`python3 -m venv {PEER_VENV} && {PEER_VENV}/bin/pip install "
        + " ".join(f"'{requirement}'" for requirement in PEER_REQUIREMENTS)
        + "`.",
        "",
        "Method: each variant runs in a fresh child process; compared variants alternate within each "
        "repetition (A B, then B A, ...) and a ratio is the median of the per-repetition ratios, so "
        "drifting machine load cancels. Times are medians; `peak MiB` is the peak resident memory of "
        "the child's process tree. No timing is asserted anywhere: this report is the output.",
        "",
        "## Headlines against the targets",
        "",
        "| case | measured | target | verdict |",
        "|---|---|---|---|",
    ]
    for headline in headlines:
        lines.append(
            f"| {headline['case']} | {headline['measured']} | {headline['target']} | {verdict(headline['ok'])} |"
        )
    lines += ["", *sections]
    return "\n".join(lines) + "\n"


CASES = {
    "1": ("case_landing_raw", "Landing -> raw, one flights partition of about 1M rows"),
    "2": ("case_overwrite", "Re-materialising one day in tables of 1, 30 and 365 days"),
    "3": ("case_upsert", "Upsert of 1% changed rows: ours against pyiceberg's Table.upsert"),
    "4": ("case_backfill", "Backfill of the 2013 example against a plain pandas script"),
    "5": ("case_load", "Code-location load against `import dagster`"),
    "6": ("case_engines", "Engine memory as partitions grow (bench/engines.py)"),
    "7": ("case_compaction", "Scan time of a table of many small files, before and after compaction"),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # the timing-sensitive, short cases first; Spark memory (not noisy) last
    parser.add_argument("--cases", nargs="+", default=["5", "2", "1", "3", "4", "6"], choices=list(CASES))
    parser.add_argument("--quick", action="store_true", help="small sizes and few repetitions (a smoke test)")
    parser.add_argument("--repeats", type=int, help="repetitions per comparison (default per case)")
    parser.add_argument("--out", type=Path, help="write the markdown report here")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()

    import importlib

    command = "PYTHONPATH=. " + shlex.join([os.path.relpath(sys.executable, REPO), *sys.argv])
    started = dt.datetime.now(dt.UTC)
    machine = machine_info()
    sections, headlines, raw = [], [], {}
    loads = [f"start {started:%H:%M} UTC: {load_average()}"]
    for case in args.cases:
        module_name, title = CASES[case]
        module = importlib.import_module(module_name)
        log(f"case {case}: {title} (load average {load_average()})")
        case_started = time.perf_counter()
        result = module.run(quick=args.quick, repeats=args.repeats)
        elapsed = time.perf_counter() - case_started
        loads.append(f"after case {case} ({elapsed / 60:.1f} min): {load_average()}")
        sections.append(
            f"## {case}. {title}\n\n{result['markdown'].strip()}\n\n_Case time: {elapsed / 60:.1f} min; "
            f"load average after it: {load_average()}._\n"
        )
        headlines += result.get("headlines", [])
        raw[case] = result.get("raw", {})
        log(f"case {case} done in {elapsed:.0f} s")
        if args.out:
            # a report after every case, so an interrupted run still leaves its figures
            args.out.write_text(render(command, started, machine, loads, headlines, sections, done=False))
    text = render(command, started, machine, loads, headlines, sections, done=True)
    if args.out:
        args.out.write_text(text)
    if args.json:
        args.json.write_text(
            json.dumps({"machine": machine, "command": command, "cases": raw}, indent=1, default=str)
        )
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
