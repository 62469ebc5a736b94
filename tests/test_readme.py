"""The README documents every setting the agent reads."""

from pathlib import Path

from logtrain.config import SETTINGS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_in_the_readme_table():
    missing = [s.name for s in SETTINGS if f"| `{s.name}` |" not in README]
    assert not missing, f"README settings table lacks {missing}"
