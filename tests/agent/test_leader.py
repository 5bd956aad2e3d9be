"""Leader election against the fake API server (real HTTP, Lease compare-and-swap), driven by a fake clock."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ood_k8s.agent import leader
from ood_k8s.agent.leader import Elector, Record
from ood_k8s.core import vocab
from ood_k8s.core.errors import Conflict, Invalid, KubeError
from ood_k8s.core.kube import KubeClient
from tests.agent.conftest import World
from tests.conftest import Clock

NS = "ood-k8s-system"
T0 = 1_750_000_000.0
MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def system(world: World) -> World:
    world.client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    return world


def elector(world: World, clock: Clock, name: str, client: Any = None) -> Elector:
    return Elector(client or world.client, NS, f"portal-{name}_0", clock=clock)


def lease(world: World) -> dict[str, Any]:
    got = world.fk.get("leases", vocab.LEASE_NAME, NS)
    assert got is not None
    return got


def test_pure_parts() -> None:
    assert leader.micro_time(T0 + 0.25) == "2025-06-15T15:06:40.250000Z"
    assert leader.micro_time(T0 + 0.9999999) == "2025-06-15T15:06:41.000000Z"
    rec = Record("a_1", 15, T0, T0 + 5, 2)
    assert leader.lease_object("l", "ns", rec, "42") == {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "l", "namespace": "ns", "resourceVersion": "42",
                     "labels": {vocab.MANAGED_BY_KEY: vocab.MANAGED_BY}},
        "spec": {"holderIdentity": "a_1", "leaseDurationSeconds": 15, "leaseTransitions": 2,
                 "acquireTime": "2025-06-15T15:06:40.000000Z", "renewTime": "2025-06-15T15:06:45.000000Z"}}
    assert leader.record(leader.lease_object("l", "ns", rec)) == rec
    assert not leader.expired(rec, T0 + 19.9) and leader.expired(rec, T0 + 20)
    assert leader.expired(rec._replace(holder=""), T0)
    assert leader.holder_at(None, T0) is None
    assert re.match(r"^h_[0-9a-f]{12}$", leader.new_identity("h"))
    with pytest.raises(ValueError):
        Elector(None, NS, lease_duration=10, renew_deadline=10)  # type: ignore[arg-type]


def test_two_agents_one_leader(system: World, clock: Clock) -> None:
    a, b = elector(system, clock, "a"), elector(system, clock, "b")
    assert a.step() is True
    assert b.step() is False
    assert (a.leading(), b.leading()) == (True, False)
    assert b.leader() == a.identity == leader.leader_of(system.client, system.cfg, now=T0)
    spec = lease(system)["spec"]
    assert spec["holderIdentity"] == a.identity and spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0 and MICRO.match(spec["renewTime"]) and MICRO.match(spec["acquireTime"])
    for _ in range(20):  # renewing every retry period: the follower never takes over
        clock.advance(2)
        assert a.step() and not b.step()
    spec = lease(system)["spec"]
    assert spec["acquireTime"] == leader.micro_time(T0) and spec["renewTime"] == leader.micro_time(T0 + 40)


class Interleaved:
    """A client that lets ``other`` run one whole attempt between our read and our write."""

    def __init__(self, inner: KubeClient, other: Elector) -> None:
        self.inner, self.other = inner, other

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        assert self.other.step()
        return self.inner.replace(obj)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        assert self.other.step()
        return self.inner.create(obj)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize("lease_exists", [False, True])
def test_a_race_has_one_winner(system: World, clock: Clock, lease_exists: bool) -> None:
    """Both read the same state; the second write fails (AlreadyExists / Conflict) and its writer follows."""
    if lease_exists:
        dead = elector(system, clock, "dead")
        assert dead.step()
        clock.advance(15)  # its Lease has expired
    b = elector(system, clock, "b")
    c = elector(system, clock, "c", Interleaved(system.client, b))
    assert c.step() is False
    assert b.leading() and not c.leading()
    assert lease(system)["spec"]["holderIdentity"] == b.identity
    assert lease(system)["spec"]["leaseTransitions"] == (1 if lease_exists else 0)


def test_a_killed_leader_is_replaced_within_the_lease_duration(system: World, clock: Clock) -> None:
    a, b = elector(system, clock, "a"), elector(system, clock, "b")
    assert a.step() and not b.step()
    last_renewal = clock()  # a is killed now: it never steps (nor releases) again
    while not b.step():
        assert not (a.leading() and b.leading())
        clock.advance(0.5)
        assert clock() - last_renewal <= 15, "the follower waits no longer than the lease duration"
    assert clock() - last_renewal == 15
    assert not a.leading(), "the dead leader's own clock retired it at renew_deadline, before the takeover"
    assert lease(system)["spec"]["holderIdentity"] == b.identity and lease(system)["spec"]["leaseTransitions"] == 1


def test_a_graceful_stop_hands_over_at_once(system: World, clock: Clock) -> None:
    a, b = elector(system, clock, "a"), elector(system, clock, "b")
    assert a.step() and not b.step()
    clock.advance(1)
    assert a.release() is True and not a.leading()
    assert lease(system)["spec"]["holderIdentity"] == ""
    assert leader.leader_of(system.client, system.cfg, now=clock()) is None
    assert b.step() is True
    assert a.release() is False, "nothing of a's to release any more"
    assert lease(system)["spec"]["holderIdentity"] == b.identity


def test_a_leader_that_cannot_renew_stops_acting_before_its_lease_lapses(system: World, clock: Clock) -> None:
    a, b = elector(system, clock, "a"), elector(system, clock, "b")
    assert a.step() and not b.step()
    system.fk.inject(status=503, count=10_000, path_contains="/leases")  # the API server fails a's renewals
    stepped_down = None
    for _ in range(40):
        clock.advance(0.5)
        if not a.step() and stepped_down is None:
            stepped_down = clock() - T0
    assert stepped_down == 10, "exactly at renew_deadline"
    assert a.last_error and "503" in a.last_error
    system.fk._injections.clear()
    clock.now = T0 + 14.9
    assert not b.step(), "the Lease has not lapsed for the others yet..."
    clock.now = T0 + 15
    assert b.step() and not a.leading(), "...and when it has, a no longer acts: never two leaders"


def test_the_fake_refuses_what_the_api_server_refuses(system: World) -> None:
    c = system.client
    good = leader.lease_object("l", NS, Record("x", 15, T0, T0, 0))
    created = c.create(good)
    stale = dict(created, metadata=dict(created["metadata"], resourceVersion="1"))
    with pytest.raises(Conflict) as conflict:
        c.replace(stale)
    assert conflict.value.message == ('Operation cannot be fulfilled on leases.coordination.k8s.io "l": the object '
                                      "has been modified; please apply your changes to the latest version and try "
                                      "again")
    zero = leader.lease_object("z", NS, Record("x", 0, T0, T0, -1))
    with pytest.raises(Invalid) as invalid:
        c.create(zero)
    assert invalid.value.message == ('Lease.coordination.k8s.io "z" is invalid: [spec.leaseDurationSeconds: Invalid '
                                     "value: 0: must be greater than 0, spec.leaseTransitions: Invalid value: -1: "
                                     "must be greater than or equal to 0]")
    whole_seconds = dict(good, metadata={"name": "w", "namespace": NS},
                         spec=dict(good["spec"], renewTime="2025-06-15T15:06:40Z"))
    with pytest.raises(KubeError) as bad:
        c.create(whole_seconds)
    assert (bad.value.status, bad.value.message) == (400, (
        'Lease in version "v1" cannot be handled as a Lease: parsing time "2025-06-15T15:06:40Z" as '
        '"2006-01-02T15:04:05.000000Z07:00": cannot parse "Z" as ".000000"'))
    with pytest.raises(KubeError) as typed:
        c.create(dict(good, metadata={"name": "n", "namespace": NS}, spec=dict(good["spec"], holderIdentity=7)))
    assert typed.value.message.endswith("json: cannot unmarshal number into Go struct field "
                                        "LeaseSpec.spec.holderIdentity of type string")
    paths = [r["name"] for r in c.request("GET", "/apis/coordination.k8s.io/v1")["resources"]]
    assert paths == ["leases"]
