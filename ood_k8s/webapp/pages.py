"""The sessions app's HTML: Jinja2 templates under ``webapp/`` in the template search path.

A site overrides a page by copying its template into ``templates.site_dir/webapp/`` (as with every
other template).  Autoescaping is on and undefined names are errors: a value reaches the page
escaped, or the page fails in a test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from ood_k8s.render.render import builtin_template_dir
from ood_k8s.webapp import rows


class Pages:
    """Renders the app's pages; one per process (templates are compiled once)."""

    def __init__(self, site_dir: str = "") -> None:
        searchpath = [d for d in (site_dir,) if d and Path(d).is_dir()] + [str(builtin_template_dir())]
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(searchpath),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["duration"] = rows.duration
        self.env.filters["clock"] = rows.clock
        self.env.filters["hours"] = _hours

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(f"webapp/{name}.html.j2").render(**context)


def _hours(value: Any) -> str:
    """GPU-hours as a page states them: ``1.5``, ``12``, ``0``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    return f"{number:.1f}".rstrip("0").rstrip(".") if number else "0"
