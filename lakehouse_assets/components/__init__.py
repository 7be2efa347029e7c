"""The component types of the defs folder: `lakehouse_assets.components.Dataset` and
`lakehouse_assets.components.Model` (registered for `dg` in pyproject's `[tool.dg.project]`)."""

from lakehouse_assets.components.contract_components import Dataset, Model

__all__ = ["Dataset", "Model"]
