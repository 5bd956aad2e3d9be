"""Job refusals speak the user's terms (issue 14, item 12): no internal key names, no repeated phrase."""

from __future__ import annotations

import pytest

from ood_k8s.core.errors import NotEntitled, UsageError
from ood_k8s.sessions.request import parse_duration
from ood_k8s.sessions.resolve import resolve
from tests.conftest import ALICE


@pytest.mark.parametrize("gpus", [65, 2])
def test_too_many_gpus_names_the_profiles_limit(make_config, gpus: int) -> None:
    from ood_k8s.sessions.request import Script

    with pytest.raises(NotEntitled) as exc:
        resolve(Script(native={"profile": "gpu-t4", "gpus": gpus}), make_config(), ALICE)
    text = str(exc.value)
    assert text.endswith("this profile allows at most 1 GPU"), text
    assert "native." not in text and "from 0 to" not in text


def test_a_bad_gpu_count_has_no_internal_name(make_config) -> None:
    from ood_k8s.sessions.request import Script

    with pytest.raises(UsageError) as exc:
        resolve(Script(native={"profile": "gpu-t4", "gpus": "lots"}), make_config(), ALICE)
    assert str(exc.value) == "GPUs: got 'lots', expected a whole number: this profile allows at most 1 GPU"


def test_memory_in_gb_is_said_once(make_config) -> None:
    from ood_k8s.sessions.request import Script

    with pytest.raises(UsageError) as exc:
        resolve(Script(native={"container": {"memory": "8GB"}}), make_config(), ALICE)
    text = str(exc.value)
    assert text.count("4Gi or 512Mi") == 1 and text.startswith("memory: got '8GB'"), text


def test_a_bad_duration_has_no_internal_name() -> None:
    with pytest.raises(UsageError) as exc:
        parse_duration("soon")
    assert "attributes." not in str(exc.value) and "walltime" in str(exc.value)
