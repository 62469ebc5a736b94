"""The README documents every setting the agent reads, exactly as the
declarations say (``logtrain settings`` prints the table)."""

from pathlib import Path

from logtrain.inputs import REGISTRY
from logtrain.settings import BY_NAME, SETTINGS, markdown_table

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_in_the_readme_table():
    missing = [s.name for s in SETTINGS if f"| `{s.name}` |" not in README]
    assert not missing, f"README settings table lacks {missing}"


def test_the_readme_table_is_the_declarations():
    assert markdown_table() in README, "README's settings table is stale: run `logtrain settings`"


def test_every_registered_input_is_declared_as_one():
    for name in REGISTRY:
        assert BY_NAME[name].role == "input", name
