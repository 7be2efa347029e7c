"""The Iceberg IO manager: asset outputs become commits, asset inputs become partition reads.

This module is what the code location loads: the resource and the definition metadata keys, with
no data stack. The reading and writing (pyiceberg, pyarrow, pandas) live in `write.py` and `read.py`,
which the IO manager imports when a step first hands it an output or asks for an input.
"""

import dagster as dg

from resources.catalog.resource import IcebergCatalogResource
from resources.spark.compute import ComputeResource


class IcebergIOManager(dg.ConfigurableIOManager):
    """Writes each asset to the Iceberg table `<layer>.<name>`; reads partitions back as pandas or Spark.

    The engine of a read is chosen from the slice's size in Iceberg metadata (see ComputeResource);
    the engine of a write is whatever frame the asset returned. Both end in the same commit path.
    """

    catalog: dg.ResourceDependency[IcebergCatalogResource]
    compute: dg.ResourceDependency[ComputeResource]

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if obj is None:
            return
        from io_managers.write import write_output

        write_output(context, obj, self.catalog)

    def load_input(self, context: dg.InputContext):
        from io_managers.read import read_input

        return read_input(context, self.catalog, self.compute)
