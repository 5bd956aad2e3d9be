"""Kubernetes name shapes: one regex each, answering as the API server's validation does.

The oracle is tests/fakekube/validation.py, a port of k8s.io/apimachinery's validation with the API
server's own messages: a name the cluster would refuse is refused here first, and none it accepts is.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ood_k8s.core import shapes
from tests.fakekube import validation as apiserver

# Characters that matter to the four shapes ('\n' apart: the port's re.match("^...$") would let a
# trailing newline through, which the API server (Go regexp) does not).
ALPHABET = "az09AZ-._/ @"
PIECES = st.text(alphabet=ALPHABET, max_size=8) | st.sampled_from(["a" * 63, "a" * 64, "b" * 250, "nvidia.com/"])
NAMES = st.lists(PIECES, max_size=5).map("".join)


@settings(max_examples=1500, deadline=None)
@given(NAMES)
def test_each_shape_answers_as_the_api_server(value: str) -> None:
    assert shapes.is_dns_label(value) == (apiserver.is_dns1123_label(value) == [])
    assert shapes.is_dns_subdomain(value) == (apiserver.is_dns1123_subdomain(value) == [])
    assert shapes.is_qualified_name(value) == (apiserver.is_qualified_name(value) == [])
    assert shapes.is_label_value(value) == (apiserver.is_valid_label_value(value) == [])


@pytest.mark.parametrize(("shape", "good", "bad"), [
    (shapes.is_dns_label, ["a", "ood-alice", "0", "a" * 63], ["", "-a", "a-", "A", "a.b", "a" * 64, "a\n"]),
    (shapes.is_dns_subdomain, ["a.b", "secrets-store.csi.k8s.io", "a" * 64], ["a..b", ".a", "a.", "A.b", "a\n",
                                                                             "a." * 126 + "ab"]),
    (shapes.is_qualified_name, ["nvidia.com/gpu", "app", "A_b.C", "k8s.io/x"],
     ["a/b/c", "/x", "Nvidia.com/gpu", "a..b/x", "x/" + "a" * 64, "gpu\n", ""]),
    (shapes.is_label_value, ["", "a", "A_b.C-9", "a" * 63], ["-a", "a_", "a" * 64, "a b", "a\n"]),
])
def test_shapes_by_example(shape: Callable[[str], bool], good: list[str], bad: list[str]) -> None:
    assert [v for v in good if not shape(v)] == []
    assert [v for v in bad if shape(v)] == []


def test_a_caller_may_ask_for_shorter_names() -> None:
    assert shapes.is_dns_label("a" * 40, max_len=40) and not shapes.is_dns_label("a" * 41, max_len=40)
    assert shapes.is_dns_subdomain("a." * 31 + "a", max_len=63) and not shapes.is_dns_subdomain("a" * 64, 63)
