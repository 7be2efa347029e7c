"""What the operator's commands share: the deployment's catalog and the names of its tables."""

import datetime as dt

from resources.settings import Settings, load_settings

LAYERS = ("landing", "raw", "staging", "common", "output")
# the product's own tables beside the layers: the quality history (audit.check_results)
NAMESPACES = (*LAYERS, "audit")


class UsageError(ValueError):
    """What the operator asked for cannot be done as asked: exit status 2, with what to do."""


def lake_catalog(settings: Settings | None = None):
    """The deployment's catalog (SQLite locally, Glue on AWS), as the code location opens it."""
    from resources.environment import resources_for

    return resources_for(settings or load_settings())["catalog"].load()


def lake_tables(catalog, namespaces: tuple[str, ...] = NAMESPACES) -> list[str]:
    """Every `layer.table` of the lakehouse namespaces that exist, sorted by layer order."""
    from resources.catalog.resource import DATABASE_PREFIX

    # Glue lists its databases with the environment's prefix (`dev_raw`), other environments' too
    prefix = catalog.properties.get(DATABASE_PREFIX, "")
    existing = {".".join(namespace) for namespace in catalog.list_namespaces()}
    names = []
    for namespace in namespaces:
        if f"{prefix}{namespace}" not in existing:
            continue
        names += sorted(f"{namespace}.{identifier[-1]}" for identifier in catalog.list_tables(namespace))
    return names


def chosen_tables(catalog, tables: list[str] | None) -> list[str]:
    """The tables a command was asked for (all of the lake's when none), refusing unknown names."""
    available = lake_tables(catalog)
    unknown = [name for name in tables or () if name not in available]
    if unknown:
        raise UsageError(f"no table {', '.join(unknown)} in this deployment; `lakehouse tables` lists them")
    return tables or available


def split_table_name(name: str) -> tuple[str, str]:
    layer, _, table = name.partition(".")
    if not layer or not table or "." in table:
        raise UsageError(f"{name!r} is not a table name like staging.flights (LAYER.TABLE)")
    return layer, table


def moment(milliseconds: int | None) -> str:
    if milliseconds is None:
        return "-"
    return dt.datetime.fromtimestamp(milliseconds / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def aligned(rows: list[tuple[str, ...]]) -> str:
    """Columns padded to their widest cell; the last column is left ragged."""
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"
