"""`lakehouse validate`: every contract and the definitions load; a file's dry run against its contract.

The dry run reads the file with the very functions the landing and raw steps use (file checks,
the format readers, `partition_from`, the typing that sends rows to the rejects) and prints what
they would do. It writes nothing: no table, no file ledger entry, no archive move.
"""

import datetime as dt
import fnmatch
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lakehouse_assets.cli.lake import UsageError

MAX_PRINTED_REJECTS = 50


@dataclass
class DryRun:
    key: str
    header: list[str] | None = None
    partitions: tuple[str, ...] = ()
    rows: int = 0
    findings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rejects: list[tuple[int | None, str]] = field(default_factory=list)


def _header_of(data: bytes, contract, key: str) -> list[str] | None:
    """The CSV header as the file writes it (None for other formats and archives)."""
    import csv

    from lakehouse_assets.layers.formats import decompress

    source = contract.source
    compression = source.compression_of(key)
    if source.format != "csv" or not source.csv.header or compression == "zip":
        return None
    text = decompress(data, compression, key)[:65536].decode(source.csv.encoding, errors="replace")
    first = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    return next(csv.reader([first], delimiter=source.csv.delimiter, quotechar=source.csv.quote_char), [])


def dry_run(contract, path: Path) -> DryRun:
    """What landing and raw would do with the file at `path`, as if it had arrived under the
    dataset's glob."""
    from lakehouse_assets.contracts.columns import REJECT_REASON, SOURCE_LINE
    from lakehouse_assets.layers.file_checks import LandingFileError, file_name_problem
    from lakehouse_assets.layers.landing import read_landed_file
    from lakehouse_assets.layers.raw import type_landing_rows
    from lakehouse_assets.layers.row_partitions import place_rows
    from resources.landing.local import LandedFile

    data = path.read_bytes()
    folder = contract.source.glob.rpartition("/")[0]
    key = f"{folder}/{path.name}" if folder else path.name
    result = DryRun(key)
    if not fnmatch.fnmatchcase(key, contract.source.glob):
        result.problems.append(
            f"{path.name}: landing would not pick it up: {key!r} does not match the glob "
            f"{contract.source.glob!r}"
        )
    problem = file_name_problem(contract, path.name)
    if problem:
        result.problems.append(problem)
    try:
        result.header = _header_of(data, contract, key)
    except Exception as exc:  # the landing read below names the problem precisely
        result.problems.append(f"{key}: the header cannot be read: {exc}")
    file = LandedFile(key=key, size=len(data), checksum=hashlib.md5(data).hexdigest())
    try:
        table = read_landed_file(data, file, contract, dt.datetime.now(dt.UTC), result.findings)
    except LandingFileError as exc:
        result.problems.append(f"landing would reject the file: {exc}")
        return result
    result.rows = table.num_rows
    if contract.partitioning is None:
        result.partitions = ("whole table",)
    elif contract.source.partition_from is not None:
        placed = place_rows(table, contract)
        table, result.partitions = placed.table, placed.partitions
        if placed.unplaced:
            result.problems.append(
                f"{placed.unplaced} of {result.rows} rows carry no time inside the partitions in "
                f"{contract.source.partition_from.source_columns} (e.g. {placed.unplaced_example}); "
                "landing leaves them out"
            )
    else:
        moment = contract.file_time(path.name)
        result.partitions = () if moment is None else (contract.partitioning.partition_key(moment),)
    rejects = type_landing_rows(table, contract).rejects
    result.rejects = list(
        zip(rejects.column(SOURCE_LINE).to_pylist(), rejects.column(REJECT_REASON).to_pylist(), strict=True)
    )
    return result


def _load_everything(out, err) -> list | None:
    """The contracts, checked together, and the code location's definitions; None after printing
    what fails to load."""
    import dagster as dg

    from lakehouse_assets.components.defs_folder import contracts_in
    from lakehouse_assets.contracts.base import ContractError

    try:
        contracts = contracts_in()
    except ContractError as exc:
        err.write(f"a contract does not load:\n{exc}\nfix the file and field named above, then run again\n")
        return None
    try:
        from lakehouse_assets.definitions import defs

        definitions = defs()
        dg.Definitions.validate_loadable(definitions)
    except Exception as exc:  # whatever stops the code location from loading is the finding
        err.write(
            f"the definitions do not load: {type(exc).__name__}: {exc}\n"
            "`dg check defs` shows the same error with its full trace\n"
        )
        return None
    assets = len(list(definitions.resolve_asset_graph().get_all_asset_keys()))
    out.write(f"{len(contracts)} contracts and the definitions load ({assets} assets)\n")
    return contracts


def _contract_named(contracts: list, name: str):
    from lakehouse_assets.contracts.contract import DatasetContract

    # a dataset before a model of the same name (flights: the dataset, and the model common.flights)
    found = sorted(
        (contract for contract in contracts if contract.name == name),
        key=lambda contract: not isinstance(contract, DatasetContract),
    )
    if not found:
        names = ", ".join(sorted({contract.name for contract in contracts}))
        raise UsageError(f"no contract is named {name!r}; the contracts are: {names}")
    return found[0]


def _dataset_for(contracts: list, path: Path):
    """The one dataset whose glob takes a file of this name, when no dataset was named."""
    from lakehouse_assets.contracts.contract import DatasetContract

    matching = [
        contract
        for contract in contracts
        if isinstance(contract, DatasetContract)
        and fnmatch.fnmatchcase(path.name, contract.source.glob.rpartition("/")[2])
    ]
    if len(matching) != 1:
        which = ", ".join(contract.name for contract in matching) or "none"
        raise UsageError(
            f"{path.name} matches the glob of {which}; name the dataset: "
            f"lakehouse validate DATASET --file {path}"
        )
    return matching[0]


def run_validate(dataset: str | None, file: str | None, out=None, err=None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    from lakehouse_assets.contracts.contract import DatasetContract

    path = Path(file) if file else None
    if path is not None and not path.is_file():
        raise UsageError(f"--file {file}: no such file")
    contracts = _load_everything(out, err)
    if contracts is None:
        return 1
    contract = _contract_named(contracts, dataset) if dataset else None
    if path is None:
        if contract is not None:
            out.write(f"{contract.name}: the contract loads\n")
        return 0
    contract = contract or _dataset_for(contracts, path)
    if not isinstance(contract, DatasetContract):
        raise UsageError(
            f"{contract.name} is a model; --file checks a landed file against a dataset's contract"
        )
    result = dry_run(contract, path)
    out.write(f"dry run of {path} as {contract.name} (landing key {result.key}); nothing is written\n")
    if result.header is not None:
        out.write(f"header: {', '.join(result.header)}\n")
    out.write(f"rows: {result.rows}\n")
    out.write(f"partitions it would touch: {', '.join(result.partitions) or '-'}\n")
    for finding in result.findings:
        out.write(f"accepted by the file checks: {finding}\n")
    for line, reason in result.rejects[:MAX_PRINTED_REJECTS]:
        out.write(f"rejected: line {line}: {reason}\n")
    if len(result.rejects) > MAX_PRINTED_REJECTS:
        out.write(f"rejected: ... and {len(result.rejects) - MAX_PRINTED_REJECTS} more rows\n")
    for problem in result.problems:
        err.write(f"problem: {problem}\n")
    if result.problems or result.rejects:
        err.write(
            f"{len(result.rejects)} rows would go to raw.{contract.name}_rejects and "
            f"{len(result.problems)} problems stop or narrow the load: fix the file or the contract, "
            "then validate again\n"
        )
        return 1
    out.write("the file would load whole\n")
    return 0
