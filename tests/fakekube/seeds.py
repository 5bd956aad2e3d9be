"""Objects a test cluster holds because the site applied them (``ood-k8s cluster render``)."""

from __future__ import annotations

from typing import Any

# Sessions run at this class (policy/pods.py SESSION_PRIORITY_CLASS); the API server refuses a pod naming a
# class that does not exist.
PRIORITY_CLASS: dict[str, Any] = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                  "metadata": {"name": "ood-interactive"}, "value": 1000,
                                  "preemptionPolicy": "PreemptLowerPriority"}
