"""yamlsafe + Renderer: values cannot break documents; site templates win; failures name the field."""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ood_k8s.core.errors import RenderError
from ood_k8s.render.render import Renderer, builtin_template_dir
from ood_k8s.render.yamlsafe import scalar
from tests.hostile import PAYLOADS, assert_injection_proof

LOADERS = (yaml.SafeLoader, yaml.CSafeLoader)
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_scalar_round_trips_any_value(value: object) -> None:
    for loader in LOADERS:
        assert yaml.load(f"k: {scalar(value)}\nafter: 1\n", Loader=loader)  # noqa: S506 - safe loaders only == {"k": value, "after": 1}


@pytest.mark.parametrize("payload", PAYLOADS)
def test_scalar_round_trips_each_payload(payload: str) -> None:
    for loader in LOADERS:
        assert yaml.load(f"- {scalar(payload)}\n", Loader=loader)  # noqa: S506 - safe loaders only == [payload]


@pytest.mark.parametrize("bad", [math.nan, math.inf, "\ud800", object()])
def test_scalar_refuses_what_is_not_data(bad: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        scalar(bad)


def write(directory, name: str, body: str) -> None:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)


CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ name }}
  labels: {{ labels }}
data:
{% for k, v in data.items() %}
  {{ k }}: {{ v }}
{% endfor %}
"""


def test_values_never_change_the_document_structure(tmp_path) -> None:
    write(tmp_path, "cm.yaml.j2", CONFIGMAP)
    assert_injection_proof("cm.yaml.j2", {"name": "n", "labels": {"a": "b"}, "data": {"k1": "v1", "k2": "v2"}},
                           site_dir=str(tmp_path))


def test_expression_is_always_a_whole_value(tmp_path) -> None:
    write(tmp_path, "cm.yaml.j2", CONFIGMAP)
    objs = Renderer(str(tmp_path)).objects("cm.yaml.j2", name="n", labels={},
                                           data={"x": "a\nb: c", "y": "{{ 1 }}"})
    assert objs == [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n", "labels": {}},
                     "data": {"x": "a\nb: c", "y": "{{ 1 }}"}}]


def test_site_directory_wins_over_builtin(tmp_path) -> None:
    builtin = sorted(p.name for p in builtin_template_dir().rglob("*.j2"))
    assert builtin, "no built-in templates found"
    name = next(p for p in builtin_template_dir().rglob("*.j2")).relative_to(builtin_template_dir())
    write(tmp_path, str(name), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ 'site-ns' }}\n")
    r = Renderer(str(tmp_path), validate=False)
    assert r.objects(str(name)) == [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "site-ns"}}]


def test_missing_site_dir_falls_back_to_builtin(tmp_path) -> None:
    r = Renderer(str(tmp_path / "absent"))
    with pytest.raises(RenderError, match=r"template nope\.j2 not found"):
        r.objects("nope.j2")


def test_undefined_variable_is_an_error(tmp_path) -> None:
    write(tmp_path, "t.j2", "a: {{ nmae }}\n")
    with pytest.raises(RenderError, match=r"t\.j2: 'nmae' is undefined"):
        Renderer(str(tmp_path)).text("t.j2", name="x")


def test_schema_failure_names_template_object_and_field(tmp_path) -> None:
    write(tmp_path, "pod.yaml.j2", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
          "  - name: c\n    image: i\n    imagePullPolcy: Always\n")
    with pytest.raises(RenderError) as err:
        Renderer(str(tmp_path)).objects("pod.yaml.j2")
    assert str(err.value) == ("pod.yaml.j2: Pod/p: spec.containers[0]: Additional properties are not allowed "
                              "('imagePullPolcy' was unexpected): not valid for Kubernetes 1.33")


def test_wrong_type_is_caught(tmp_path) -> None:
    write(tmp_path, "ns.yaml.j2", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ n }}\n  labels: {{ l }}\n")
    with pytest.raises(RenderError, match=r"Namespace/x: metadata.labels.a: 1 is not of type 'string'"):
        Renderer(str(tmp_path)).objects("ns.yaml.j2", n="x", l={"a": 1})


def test_unknown_version_is_a_config_problem() -> None:
    from ood_k8s.render import schema

    with pytest.raises(RenderError, match=r"no Kubernetes schema for version 1\.2"):
        schema.validate({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}, "1.2")
