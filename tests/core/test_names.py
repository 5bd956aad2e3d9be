"""names.py guarantees: valid labels, readable when possible, no collisions, stable."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ood_k8s.core import names
from ood_k8s.core.errors import UsageError

LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize("username", ["alice", "bob-2", "a", "u123", "x" * 40])
def test_valid_labels_stay_readable(username: str) -> None:
    assert names.slug(username) == username


@pytest.mark.parametrize("username", [
    "Alice", "first.last", "alice@example.edu", "élodie", "用户", "x" * 41, "a--b", "-a", "a-", "a_b", "A",
])
def test_other_names_get_a_hashed_slug(username: str) -> None:
    s = names.slug(username)
    assert LABEL.match(s) and len(s) <= 40
    assert "--" in s and s != username


def test_examples_are_pinned() -> None:
    # Pinned so a change of algorithm (which would orphan every namespace) cannot go unnoticed.
    assert names.slug("Alice") == "alice--3bc5106297"
    assert names.slug("first.last").startswith("first-last--")
    assert names.slug("用户").startswith("u--")


def test_case_variants_do_not_collide() -> None:
    assert len({names.slug(v) for v in ("alice", "Alice", "ALICE", "aLiCe")}) == 4


def test_exhaustive_short_names_are_valid_and_distinct() -> None:
    alphabet = "aZ0.-_@é"
    seen: dict[str, str] = {}
    for n in range(1, 5):
        for chars in itertools.product(alphabet, repeat=n):
            u = "".join(chars)
            s = names.slug(u)
            assert LABEL.match(s) and len(s) <= 40, (u, s)
            assert seen.setdefault(s, u) == u, f"{u!r} and {seen[s]!r} both give {s!r}"


@settings(max_examples=500, deadline=None)
@given(st.text(min_size=1, max_size=120))
def test_any_text_gives_a_label(username: str) -> None:
    for max_len in (40, 63, 13):
        s = names.slug(username, max_len=max_len)
        assert LABEL.match(s) and len(s) <= max_len
        assert names.slug(username, max_len=max_len) == s  # pure


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=60), st.text(min_size=1, max_size=60))
def test_distinct_inputs_give_distinct_slugs(a: str, b: str) -> None:
    if a != b:
        assert names.slug(a) != names.slug(b)


def test_for_user_builds_every_name() -> None:
    n = names.for_user("Alice.Smith@uni.edu", "ood-", "ood:")
    assert n.namespace == "ood-" + n.slug and len(n.namespace) <= 63
    assert n.rbac_user == "ood:Alice.Smith@uni.edu"
    assert n.labels == {"app.kubernetes.io/managed-by": "ood-k8s", "ood-k8s.io/user": n.slug}
    assert n.annotations == {"ood-k8s.io/username": "Alice.Smith@uni.edu"}
    assert n.selector == f"app.kubernetes.io/managed-by=ood-k8s,ood-k8s.io/user={n.slug}"


def test_namespace_fits_with_the_longest_prefix() -> None:
    n = names.for_user("x" * 64, "p" * 20 + "-")
    assert len(n.namespace) <= 63 and LABEL.match(n.namespace)


@pytest.mark.parametrize("bad", [
    "", "..", "a/b", "../etc", "alice\n", "ALICE\n",
    "a..b", "-rf", ".hidden", "a b", "a\nb", "a\x00b", "é", "x" * 65, "a;b", "$(id)",
])
def test_check_username_refuses_dangerous_names(bad: str) -> None:
    with pytest.raises(UsageError) as err:
        names.check_username(bad)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("ok", ["alice", "Alice", "first.last", "a@b.edu", "u_1", "x" * 64])
def test_check_username_accepts_portal_names(ok: str) -> None:
    assert names.check_username(ok) == ok


def test_job_ids() -> None:
    jid = names.job_id("Jupyter Lab!", bytes(range(8)))
    assert re.match(r"^jupyter-lab-[0-9a-z]{8}$", jid) and len(jid) <= names.JOB_ID_MAX
    assert names.job_id("", b"\x00" * 8).startswith("job-")
    assert names.job_id("123", b"\x01" * 8).startswith("job-123-")
    long = names.job_id("n" * 100, b"\xff" * 8)
    assert len(long) <= names.JOB_ID_MAX and LABEL.match(long)
    for child in names.job_children(long).values():
        assert len(child) <= 63 and LABEL.match(child)


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "UPPER", "x" * 41, "a b", "-x"])
def test_check_job_id(bad: str) -> None:
    with pytest.raises(UsageError, match="Invalid job id specified"):
        names.check_job_id(bad)
