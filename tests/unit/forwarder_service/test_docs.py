"""docs/forwarder.md lists every variable the forwarder reads, with the default the code uses."""

from __future__ import annotations

import re
from pathlib import Path

from forwarder_service.settings import ForwarderSettings

DOC = Path(__file__).resolve().parents[3] / "docs" / "forwarder.md"


def _shown(default: object) -> str:
    if default is None:
        return "unset"
    if default == "":
        return "empty"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    return f"`{default}`"


def test_every_variable_is_documented_with_its_default() -> None:
    text = DOC.read_text()
    documented = dict(re.findall(r"^\| `([A-Z_]+)` \| ([^|]+?) \|", text, flags=re.MULTILINE))
    for name, field in ForwarderSettings.model_fields.items():
        variable = name.upper()
        assert variable in documented, f"{variable} is not in docs/forwarder.md"
        assert documented[variable] == _shown(field.default), variable
