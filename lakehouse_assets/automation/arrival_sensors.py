"""File-arrival sensors: one per dataset, watching its glob in the landing zone.

A tick lists the dataset's files (paginated, so any number of objects), keeps those the cursor has
not seen (`arrivals.ArrivalCursor`), maps each to its partition with the contract's
`file_date_pattern` and requests one run per partition, with the files' key@etag as run key:
Dagster never launches two runs with one run key, so the same object never triggers twice, even
after the cursor is reset, while a changed object (new etag) re-runs its partition.

Downstream layers follow in two ways. The run a sensor requests is the dataset's own chain,
landing -> raw (+ rejects, audit) -> staging, for the partition (a reference dataset: the whole
table), so one run per arrival carries the blocking checks between those steps. Common and output
tables join several datasets, so they follow by declarative automation (`automation.py`): a model
partition runs once all its inputs exist and again whenever one of them changes. A job selection
reaching to output would run common.flights before the day's weather had arrived (and fail on a
first day, when the weather table does not exist yet).

A file that matches the glob but no partition (no date in its name, or a date outside the
partitions) is logged and e-mailed once, and left in place.

A dataset whose rows carry their partitions (`source.partition_from`) has each new file read once
here to learn the partitions its rows touch; the sensor requests those partitions, consecutive
ones as one range run up to what the backfill policy allows per run, each other one on its own.
The landing step reads the file again and records the partitions in the file ledger, the index
every later run of those partitions reads.
"""

import datetime as dt
from collections import defaultdict

import dagster as dg

from lakehouse_assets.automation.arrivals import DEFAULT_GRACE, ArrivalCursor, batch_id, run_key
from lakehouse_assets.automation.policies import backfill_policy_for
from lakehouse_assets.contracts.contract import DatasetContract, backfill_partitions_per_run
from lakehouse_assets.contracts.partitioning import PARTITION_KEY_FORMATS
from resources.landing.local import LandedFile, LandingStorage
from resources.metrics import Metric, MetricsPublisher
from resources.notifications.notifier import Notifier

MAX_LISTED_FILES = 50
# the layers a dataset contract produces; the asset factory names each group after its layer
DATASET_LAYERS = ("landing", "raw", "staging")


def sensor_name(contract: DatasetContract) -> str:
    return f"{contract.name}_arrivals"


def target_for(contract: DatasetContract) -> dg.AssetSelection:
    """The dataset's own chain: its landing asset and what follows it in landing, raw and staging."""
    landing = dg.AssetSelection.assets(dg.AssetKey(["landing", contract.name]))
    return landing.downstream() & dg.AssetSelection.groups(*DATASET_LAYERS)


def partition_of(contract: DatasetContract, file: LandedFile) -> str | None:
    """The partition key (hour, day or month) a file belongs to, or None when its name carries no
    valid one."""
    moment = contract.file_time(file.name)
    return None if moment is None else contract.partitioning.partition_key(moment)


def partitions_in_rows(contract: DatasetContract, file: LandedFile, data: bytes) -> tuple[str, ...]:
    """The partitions a file's rows touch (`source.partition_from`); empty when none lies inside them."""
    import datetime as dt

    from lakehouse_assets.layers.landing import read_landed_file
    from lakehouse_assets.layers.row_partitions import place_rows

    return place_rows(read_landed_file(data, file, contract, dt.datetime.now(dt.UTC)), contract).partitions


def partition_ranges(contract: DatasetContract, keys: set[str]) -> list[tuple[str, str]]:
    """The partitions as (first, last) ranges of consecutive keys, each at most as long as the
    dataset's backfill policy runs at once (any length when it takes a range in one run)."""
    import datetime as dt

    partitioning = contract.partitioning
    policy = backfill_policy_for(
        True,
        contract.engine,
        partitioning.granularity,
        partitions_per_run=backfill_partitions_per_run(contract),
    )
    most = policy.max_partitions_per_run or len(keys) or 1
    key_format = PARTITION_KEY_FORMATS[partitioning.granularity]

    def start(key: str) -> dt.datetime:
        return partitioning.local(dt.datetime.strptime(key, key_format)).astimezone(dt.UTC)

    def follows(previous: str, key: str) -> bool:
        if partitioning.granularity == "month":
            before, after = dt.datetime.strptime(previous, key_format), dt.datetime.strptime(key, key_format)
            return (after.year * 12 + after.month) - (before.year * 12 + before.month) == 1
        step = dt.timedelta(hours=1) if partitioning.granularity == "hour" else dt.timedelta(days=1)
        # (days compare their local dates: a day of a DST change is not 24 hours long)
        if partitioning.granularity == "day":
            return (dt.date.fromisoformat(key) - dt.date.fromisoformat(previous)).days == 1
        return start(key) - start(previous) == step

    ranges: list[list[str]] = []
    for key in sorted(keys, key=start):
        if ranges and len(ranges[-1]) < most and follows(ranges[-1][-1], key):
            ranges[-1].append(key)
        else:
            ranges.append([key])
    return [(run[0], run[-1]) for run in ranges]


def _listing(files: list[LandedFile]) -> str:
    lines = [f"  {file.key} ({file.size} bytes, etag {file.checksum})" for file in files[:MAX_LISTED_FILES]]
    if len(files) > MAX_LISTED_FILES:
        lines.append(f"  ... and {len(files) - MAX_LISTED_FILES} more")
    return "\n".join(lines)


def evaluate_arrivals(
    contract: DatasetContract,
    context: dg.SensorEvaluationContext,
    landing_storage: LandingStorage,
    notifier: Notifier,
    metrics: MetricsPublisher,
    grace: dt.timedelta = DEFAULT_GRACE,
) -> dg.SensorResult:
    files = landing_storage.list_files(contract.source.glob)
    new, cursor = ArrivalCursor.parse(context.cursor).advance(files, grace)
    if not new:
        return dg.SensorResult(run_requests=[], cursor=cursor.serialize())

    by_partition: dict[str | None, list[LandedFile]] = defaultdict(list)
    unmatched: list[LandedFile] = []
    touched: dict[str, set[str]] = {}
    for file in new:
        if contract.source.partition_from is not None:
            try:
                touched[file.key] = set(
                    partitions_in_rows(contract, file, landing_storage.read_bytes(file.key))
                )
            except ValueError as error:
                # landing will reject it and record why in the file ledger
                context.log.warning(f"{file.key}: cannot be read to find its partitions: {error}")
                touched[file.key] = set()
            if not touched[file.key]:
                unmatched.append(file)
            for partition in touched[file.key]:
                by_partition[partition].append(file)
        elif contract.partitioning is None:
            by_partition[None].append(file)
        elif (partition := partition_of(contract, file)) is None:
            unmatched.append(file)
        else:
            by_partition[partition].append(file)

    if unmatched:
        context.log.warning(
            f"{len(unmatched)} file(s) match {contract.source.glob!r} but no partition of {contract.name} "
            f"(pattern {contract.source.file_date_pattern!r}); left in place: "
            + ", ".join(file.key for file in unmatched[:MAX_LISTED_FILES])
        )
        notifier.notify(
            "file_unmatched",
            f"unmatched/{contract.name}/{batch_id(unmatched)}",
            dataset=contract.name,
            count=len(unmatched),
            pattern=contract.source.file_date_pattern,
            files=_listing(unmatched),
        )

    tags = {"lakehouse/trigger": "file-arrival", "lakehouse/dataset": contract.name}
    if contract.source.partition_from is None:
        requests = [
            dg.RunRequest(run_key=run_key(batch), partition_key=partition, tags=tags)
            for partition, batch in sorted(by_partition.items(), key=lambda item: item[0] or "")
        ]
    else:
        requests = [
            _range_request(first, last, by_partition, tags)
            for first, last in partition_ranges(contract, set(by_partition))
        ]
    arrived = [file for batch in by_partition.values() for file in batch]
    if arrived:
        partitions = ", ".join(partition or "whole table" for partition in sorted(by_partition, key=str))
        context.log.info(f"{len(arrived)} new file(s) for {contract.name}: runs for {partitions}")
        notifier.notify(
            "file_arrived",
            f"arrived/{contract.name}/{batch_id(arrived)}",
            dataset=contract.name,
            count=len(arrived),
            landing=landing_storage.describe(),
            files=_listing(arrived),
            partitions=partitions,
        )
    dimensions = {"dataset": contract.name, "layer": "landing"}
    metrics.publish(
        [
            Metric("FilesArrived", len(arrived), "Count", dimensions),
            Metric("BytesArrived", sum(file.size for file in arrived), "Bytes", dimensions),
            Metric("FilesUnmatched", len(unmatched), "Count", dimensions),
        ]
    )
    return dg.SensorResult(run_requests=requests, cursor=cursor.serialize())


def _range_request(first: str, last: str, by_partition: dict, tags: dict) -> dg.RunRequest:
    files = {file.key: file for key, batch in by_partition.items() if first <= key <= last for file in batch}
    key = f"{run_key(list(files.values()))}#{first}..{last}"
    if first == last:
        return dg.RunRequest(run_key=key, partition_key=first, tags=tags)
    bounds = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    return dg.RunRequest(run_key=key, tags=tags | bounds)


def build_arrival_sensor(
    contract: DatasetContract,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    minimum_interval_seconds: int = 60,
) -> dg.SensorDefinition:
    @dg.sensor(
        name=sensor_name(contract),
        description=f"Runs {contract.name} from landing on when files match {contract.source.glob!r}",
        target=target_for(contract),
        default_status=default_status,
        minimum_interval_seconds=minimum_interval_seconds,
    )
    def arrivals(
        context: dg.SensorEvaluationContext,
        landing_storage: LandingStorage,
        notifier: Notifier,
        metrics: MetricsPublisher,
    ) -> dg.SensorResult:
        return evaluate_arrivals(contract, context, landing_storage, notifier, metrics)

    return arrivals


def build_arrival_sensors(contracts: list, **kwargs) -> list[dg.SensorDefinition]:
    return [
        build_arrival_sensor(contract, **kwargs)
        for contract in contracts
        if isinstance(contract, DatasetContract)
    ]
