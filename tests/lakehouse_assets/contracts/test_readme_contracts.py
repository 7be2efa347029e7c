"""Every contract the README's "Adding a dataset" shows loads, so the template a newcomer copies works."""

import re
from pathlib import Path

import pytest
import yaml

from lakehouse_assets.components.defs_folder import contract_in

README = Path(__file__).resolve().parents[3] / "README.md"


def _dataset_section_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("\n## Adding a dataset") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)


# the blocks a newcomer copies into a `defs.yaml`
CONTRACT_BLOCKS = [
    block for block in _dataset_section_blocks() if "attributes" in (yaml.safe_load(block) or {})
]


def _name(block: str) -> str:
    return yaml.safe_load(block)["attributes"]["name"]


def test_the_section_shows_a_contract_per_format():
    formats = {
        yaml.safe_load(block)["attributes"]["source"].get("format", "csv") for block in CONTRACT_BLOCKS
    }
    assert formats == {"csv", "jsonl", "parquet"}


@pytest.mark.parametrize("block", CONTRACT_BLOCKS, ids=_name)
def test_a_readme_contract_loads(block, tmp_path):
    path = tmp_path / "defs.yaml"
    path.write_text(block, encoding="utf-8")
    assert contract_in(path).name == _name(block)
