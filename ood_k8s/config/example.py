"""``ood-k8s config example``: the schema as a complete, commented file equal to the built-in default."""
from __future__ import annotations

from typing import Any

from ood_k8s.config.schema import Config
from ood_k8s.config.section import fields, is_section


def example() -> str:
    """A complete, commented configuration equal to the built-in default."""
    import json

    lines = ["# ood-k8s site configuration (/etc/ood/config/ood_k8s.yml).",
             "# Every key is optional; what is shown is the built-in default.",
             "# Check a file with: ood-k8s config check --config FILE"]

    def scalar(v: Any) -> str:
        return json.dumps(v)  # JSON scalars are valid YAML and quote everything that needs it

    def emit(obj: Any, indent: int) -> None:
        pad = "  " * indent
        for f in fields(obj):
            if f.internal:
                continue
            value = getattr(obj, f.name)
            doc = f.doc
            if is_section(value):
                lines.append(f"{pad}# {doc}" if doc else "")
                lines.append(f"{pad}{f.name}:")
                emit(value, indent + 1)
                continue
            if doc:
                lines.append(f"{pad}# {doc}")
            if f.secret:
                value = type(value)()
            if isinstance(value, list) and value and is_section(value[0]):
                lines.append(f"{pad}{f.name}:")
                for item in value:
                    start = len(lines)
                    emit(item, indent + 2)
                    # turn the first key line of the item into a list entry
                    for j in range(start, len(lines)):
                        if not lines[j].lstrip().startswith("#") and lines[j].strip():
                            lines[j] = "  " * (indent + 1) + "- " + lines[j].lstrip()
                            break
            elif isinstance(value, (list, dict)) and not value:
                lines.append(f"{pad}{f.name}: {'[]' if isinstance(value, list) else '{}'}")
            elif isinstance(value, list):
                lines.append(f"{pad}{f.name}:")
                lines.extend(f"{pad}  - {scalar(v)}" for v in value)
            elif isinstance(value, dict):
                lines.append(f"{pad}{f.name}:")
                lines.extend(f"{pad}  {scalar(k)}: {scalar(v)}" for k, v in value.items())
            else:
                lines.append(f"{pad}{f.name}: {scalar(value)}")

    emit(Config(), 0)
    return "\n".join(lines) + "\n"
