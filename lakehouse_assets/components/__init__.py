"""The component types of the defs folder, `lakehouse_assets.components.Dataset` and
`lakehouse_assets.components.Model`, which `dg` finds by pyproject's registry_modules entry point."""

from lakehouse_assets.components.contract_components import Dataset, Model

__all__ = ["Dataset", "Model"]
