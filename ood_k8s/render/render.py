# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""Jinja2 templates -> Kubernetes objects, with no way for a value to break the YAML.

* Templates are looked up in the site directory first (``templates.site_dir``), then in the
  templates shipped with ood-k8s, so a site overrides a file by copying it and editing it.
* ``StrictUndefined``: a misspelt variable is an error, not an empty string.
* Every template sees the global ``vocab`` (:mod:`ood_k8s.core.vocab`): write ``vocab.USER_LABEL``,
  never the key itself.
* Every ``{{ expression }}`` is passed through :func:`ood_k8s.render.yamlsafe.scalar` (Jinja2's
  ``finalize``), so it always becomes exactly one YAML value.  The rule for template authors
  follows: an expression is a whole value; build strings inside it (``{{ job ~ "-svc" }}``).
* The output is parsed (multi-document) and every object is validated against the Kubernetes
  schema of ``cluster.kubernetes_version`` (see :mod:`ood_k8s.render.schema`).
"""

import importlib.util
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Tuple

from ood_k8s.core import vocab
from ood_k8s.core.errors import RenderError
from ood_k8s.render import yamlsafe
from ood_k8s.render.yamlsafe import scalar


def builtin_template_dir() -> Path:
    """The shipped templates: packaged as ``ood_k8s.templates``, or ``templates/`` in a checkout."""
    spec = importlib.util.find_spec("ood_k8s.templates")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if Path(location).is_dir():
                return Path(location)
    return Path(__file__).resolve().parents[2] / "templates"


def _finalize(value: Any) -> str:
    import jinja2

    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises the "'x' is undefined" error here
    return scalar(value)


class Renderer:
    """Renders and validates templates; create one per process and reuse it (templates are cached)."""

    def __init__(self, site_dir: Optional[str] = None, kubernetes_version: str = "1.33",
                 validate: bool = True) -> None:
        import jinja2

        searchpath = [d for d in (site_dir,) if d and Path(d).is_dir()] + [str(builtin_template_dir())]
        self.kubernetes_version = kubernetes_version
        self.validate = validate
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(searchpath),
            undefined=jinja2.StrictUndefined,
            finalize=_finalize,
            autoescape=False,  # noqa: S701 - the output is YAML, made safe by _finalize, not HTML
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        # Every persisted key, so a template (shipped or a site's copy) never spells one by hand.
        self.env.globals["vocab"] = vocab

    def text(self, template: str, **context: Any) -> str:
        import jinja2

        try:
            return self.env.get_template(template).render(**context)
        except jinja2.TemplateNotFound:
            raise RenderError(f"template {template} not found",
                              "check templates.site_dir and the name of the file") from None
        except jinja2.UndefinedError as exc:
            raise RenderError(f"{template}: {exc.message}", "the template uses a value that is not provided") from None
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(f"{exc.filename or template}:{exc.lineno}: {exc.message}") from None
        except (TypeError, ValueError) as exc:
            raise RenderError(f"{template}: {exc}") from None

    def objects(self, template: str, **context: Any) -> list[dict[str, Any]]:
        """Render ``template`` and return its (validated) objects, skipping empty documents."""
        import yaml

        text = self.text(template, **context)
        try:
            docs = [d for d in yamlsafe.load_all(text) if d is not None]
        except yaml.YAMLError as exc:
            raise RenderError(f"{template}: output is not valid YAML: {exc}".replace("\n", " ")) from None
        for doc in docs:
            if not isinstance(doc, dict):
                raise RenderError(f"{template}: a document is a {type(doc).__name__}, expected an object")
            if self.validate:
                validate(doc, self.kubernetes_version, template)
        return docs

    def many(self, templates: Iterable[str], **context: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name in templates:
            out.extend(self.objects(name, **context))
        return out


def validate(obj: dict[str, Any], version: str, source: str = "") -> None:
    from ood_k8s.render import schema

    schema.validate(obj, version, source)


_SHARED: Dict[Tuple[str, str], Renderer] = {}


def for_config(cfg: Any) -> Renderer:
    """The process-wide validating renderer for a site configuration (templates compile once)."""
    key = (cfg.templates.site_dir, cfg.cluster.kubernetes_version)
    if key not in _SHARED:
        _SHARED[key] = Renderer(cfg.templates.site_dir, cfg.cluster.kubernetes_version)
    return _SHARED[key]
