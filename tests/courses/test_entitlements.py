"""A course entitles its roster to its profiles during its term: submit, the hook's namespace record, the
rendered admission guard (cel-python, as in tests/security) and the OOD form all agree."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from ood_k8s.config import Config
from ood_k8s.core import vocab
from ood_k8s.core.errors import NotEntitled
from ood_k8s.courses import membership
from ood_k8s.policy import access, pods
from ood_k8s.render.render import Renderer
from ood_k8s.sessions import objects
from ood_k8s.sessions.request import Script
from ood_k8s.sessions.resolve import resolve
from ood_k8s.users import desired
from tests.conftest import BOB
from tests.courses.course_site import BEFORE_TERM, HOOK_NOW, MON_10_NY, TERM_END_NY, TERM_START_NY, site
from tests.ood.test_app_lib import ruby
from tests.security import vap

STUDENT = BOB._replace(groups=(*BOB.groups, "cs109b"))  # bob: not in gpu-users, on cs109b's roster


def session_pod(cfg: Config, ident: Any, profile: str, now: float, **native: Any) -> dict[str, Any]:
    script = Script.from_dict({"content": "jupyter lab", "job_name": "jupyter", "wall_time": 3600,
                               "native": {"profile": profile, **native}})
    return objects.pod(resolve(script, cfg, ident, now=now), "jupyter-0a1b2c3d")


def namespace(cfg: Config, ident: Any, now: str = HOOK_NOW) -> dict[str, Any]:
    objs = desired.desired_objects(cfg, ident, now=now, renderer=Renderer(None, validate=False))
    ns = next(o for o in objs if o["kind"] == "Namespace")
    ns["metadata"]["labels"]["kubernetes.io/metadata.name"] = ns["metadata"]["name"]
    return ns


def test_a_student_gets_the_courses_profiles_during_the_term_only() -> None:
    cfg = site()
    a10g = cfg.profile("gpu-a10g")
    assert not access.may_use_profile(a10g, STUDENT)  # the profile itself is for gpu-users
    assert access.may_use_profile(a10g, STUDENT, access.course_profiles(cfg, STUDENT, MON_10_NY))
    assert not access.may_use_profile(a10g, STUDENT, access.course_profiles(cfg, STUDENT, BEFORE_TERM))
    assert not access.may_use_profile(a10g, BOB, access.course_profiles(cfg, BOB, MON_10_NY))


def test_the_hook_records_the_course_profiles_on_the_namespace_and_the_term_re_provisions() -> None:
    cfg = site()
    annotation = namespace(cfg, STUDENT)["metadata"]["annotations"][vocab.PROFILES_ANNOTATION]
    assert annotation == "cpu,gpu-t4,gpu-a10g"
    before = namespace(cfg, STUDENT, "2027-01-24T12:00:00Z")["metadata"]["annotations"]
    assert before[vocab.PROFILES_ANNOTATION] == "cpu,gpu-t4"
    assert namespace(cfg, BOB)["metadata"]["annotations"][vocab.PROFILES_ANNOTATION] == "cpu,gpu-t4"
    fp: dict[str, Any] = {}
    assert desired.desired_hash(cfg, STUDENT, fp, now=BEFORE_TERM) != desired.desired_hash(cfg, STUDENT, fp,
                                                                                            now=MON_10_NY)
    assert desired.desired_hash(cfg, BOB, fp, now=BEFORE_TERM) == desired.desired_hash(cfg, BOB, fp, now=MON_10_NY)
    # a site without courses hashes as before (no re-provisioning of everyone)
    assert "courses" not in desired.hash_inputs(Config(), BOB, fp)


def test_submit_labels_the_session_mounts_the_datasets_read_only_and_refuses_outsiders() -> None:
    cfg = site()
    pod = session_pod(cfg, STUDENT, "gpu-a10g", MON_10_NY)
    assert pod["metadata"]["labels"][vocab.COURSE_LABEL] == "cs109b"
    assert {"name": "imagenet", "persistentVolumeClaim": {"claimName": "imagenet-ro", "readOnly": True}} \
        in pod["spec"]["volumes"]
    assert {"name": "imagenet", "mountPath": "/data/imagenet", "readOnly": True} \
        in pod["spec"]["containers"][0]["volumeMounts"]
    cpu = session_pod(cfg, STUDENT, "cpu", MON_10_NY)  # the site's own profile: no course
    assert vocab.COURSE_LABEL not in cpu["metadata"]["labels"]
    assert "imagenet" not in [v["name"] for v in cpu["spec"]["volumes"]]
    for who, when in ((BOB, MON_10_NY), (STUDENT, BEFORE_TERM), (STUDENT, TERM_END_NY)):
        with pytest.raises(NotEntitled, match="reserved for members"):
            session_pod(cfg, who, "gpu-a10g", when)
    assert session_pod(cfg, STUDENT, "gpu-a10g", TERM_START_NY)  # the first second of the term


def test_a_course_pool_moves_its_sessions() -> None:
    cfg = site(node_pool="cs109b-a10g")
    pod = session_pod(cfg, STUDENT, "gpu-a10g", MON_10_NY)
    assert pod["spec"]["nodeSelector"][vocab.KARPENTER_NODEPOOL_LABEL] == "cs109b-a10g"
    assert pods.node_pools(cfg.profiles, cfg.courses)["cs109b-a10g"] == ["gpu-a10g"]
    assert "cs109b-a10g" in pods.gpu_pools(cfg.profiles, cfg.courses)


# --- the guard, rendered: a student off the roster cannot get the course's profile through the API either ----


@pytest.mark.parametrize("pool", ["", "cs109b-a10g"])
def test_the_guard_admits_the_students_course_session(pool: str) -> None:
    cfg = site(node_pool=pool)
    pod = session_pod(cfg, STUDENT, "gpu-a10g", MON_10_NY)
    assert vap.pod_guard(cfg).admit(pod, namespace(cfg, STUDENT)) == []


def _as(pod: dict[str, Any], ident: Any) -> dict[str, Any]:
    pod = copy.deepcopy(pod)
    pod["metadata"]["namespace"] = f"ood-{ident.username}"
    for key in ("runAsUser", "runAsGroup"):
        pod["spec"]["securityContext"][key] = ident.uid
    pod["spec"]["securityContext"]["supplementalGroups"] = list(ident.gids)
    return pod


@pytest.mark.parametrize("pool", ["", "cs109b-a10g"])
def test_a_student_off_the_roster_cannot_build_the_course_pod(pool: str) -> None:
    cfg = site(node_pool=pool)
    guard = vap.pod_guard(cfg)
    pod = _as(session_pod(cfg, STUDENT, "gpu-a10g", MON_10_NY), BOB)
    denied = guard.admit(pod, namespace(cfg, BOB))
    assert any("entitled to (cpu,gpu-t4)" in d for d in denied), denied
    # nor the roster's own student once the term is over (the hook re-records the namespace)
    after = namespace(cfg, STUDENT, "2027-06-01T00:00:00Z")
    assert guard.admit(session_pod(cfg, STUDENT, "gpu-a10g", MON_10_NY), after) != []


def test_the_course_pool_without_a_gpu_and_a_writable_dataset_are_refused() -> None:
    cfg = site(node_pool="cs109b-a10g")
    guard = vap.pod_guard(cfg)
    ns = namespace(cfg, STUDENT)
    pod = session_pod(cfg, STUDENT, "cpu", MON_10_NY)
    pod["spec"]["nodeSelector"] = {vocab.KARPENTER_NODEPOOL_LABEL: "cs109b-a10g"}
    assert any("must request a GPU" in d for d in guard.admit(pod, ns))
    writable = session_pod(cfg, STUDENT, "gpu-a10g", MON_10_NY)
    for v in writable["spec"]["volumes"]:
        if v["name"] == "imagenet":
            v["persistentVolumeClaim"]["readOnly"] = False
    assert any("read-only claims" in d for d in guard.admit(writable, ns))
    other = session_pod(cfg, STUDENT, "gpu-a10g", MON_10_NY)
    other["spec"]["volumes"].append({"name": "x", "persistentVolumeClaim": {"claimName": "someone-elses"}})
    assert guard.admit(other, ns) != []


# --- the OOD form (Ruby) applies the same course rule ----------------------------------------------------


def test_the_forms_course_rule_is_membership() -> None:
    cfg = site()
    data = __import__("ood_k8s.config", fromlist=["to_dict"]).to_dict(cfg, redact=False)
    data["courses"].append({**data["courses"][0], "name": "open", "groups": ["students"], "profiles": ["gpu-t4"],
                            "term_start": "", "term_end": "", "datasets": [], "warm": {"count": 0}})
    from ood_k8s.config import parse

    cfg = parse(data)
    rules = access.course_rules(cfg)
    mine = [[], ["cs109b"], ["students"], ["bob", "cs109b", "students"], ["cs109b-staff"]]
    nows = [BEFORE_TERM, TERM_START_NY, MON_10_NY, TERM_END_NY - 0.5, TERM_END_NY]
    cases = list(itertools.product(mine, nows))
    got = ruby("puts JSON.generate(data[1].map { |m, now| OodK8sForm.course_profiles(data[0], m, now) })",
               [rules, cases])
    want = [membership.granted_profiles(cfg, BOB._replace(groups=tuple(m)), now) for m, now in cases]
    assert got == want
    assert any(want) and not all(want)  # the table has both answers


def test_submit_refuses_the_course_pool_for_another_profile_as_the_guard_does() -> None:
    cfg = site(node_pool="cs109b-a10g")
    with pytest.raises(NotEntitled, match="node pool 'cs109b-a10g' is not the one of profile 'cpu'"):
        session_pod(cfg, STUDENT, "cpu", MON_10_NY, node_selector={vocab.KARPENTER_NODEPOOL_LABEL: "cs109b-a10g"})
    shared = site(node_pool="gpu-t4")  # a course may use another profile's pool for its own profile
    pod = session_pod(shared, STUDENT, "gpu-a10g", MON_10_NY)
    assert pod["spec"]["nodeSelector"][vocab.KARPENTER_NODEPOOL_LABEL] == "gpu-t4"
    assert vap.pod_guard(shared).admit(pod, namespace(shared, STUDENT)) == []
