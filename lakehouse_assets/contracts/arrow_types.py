"""Contract column types as Arrow types, for the steps that type and write data.

`column_schema.type_label` spells the same types without pyarrow for the asset metadata the code
location shows when it loads; a test holds the two together.
"""

import pyarrow as pa

from lakehouse_assets.contracts.base import DECIMAL_TYPE


def arrow_type(type_name: str) -> pa.DataType:
    decimal = DECIMAL_TYPE.match(type_name)
    if decimal:
        return pa.decimal128(int(decimal.group(1)), int(decimal.group(2)))
    return {
        "string": pa.string(),
        "int": pa.int32(),
        "long": pa.int64(),
        "double": pa.float64(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
    }[type_name]
