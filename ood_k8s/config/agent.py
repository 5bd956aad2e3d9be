# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""The agent's settings: the poll cache's socket and freshness, its identity, and the lifecycle its leader runs.

Read by every status poll (through the config's compiled cache), so declared as the schema is (see
:mod:`ood_k8s.config.schema`): no postponed annotations.
"""

from ood_k8s.config.section import section, setting
from ood_k8s.config.values import (
    check_abs_path,
    check_dns_label,
    check_non_negative,
    check_percent,
    check_positive,
    check_subject,
    check_url,
)


@section
class AgentConfig:
    # Read by every status poll (through the config's compiled cache) before it opens the socket.
    enabled: bool = setting(False, "Status polls (ood-k8s-psij get_info, 'ood-k8s job info/list') ask the agent "
                            "('ood-k8s agent') first and fall back to the API server when it does not answer.")
    socket: str = setting("/run/ood-k8s/agent.sock", "The agent's Unix socket; it answers each caller about "
                          "the caller's own sessions only (the kernel names the caller).", check=check_abs_path)
    max_age: float = setting(60.0, "Seconds the agent's view may lag the API server (its watch down or silent) "
                             "and still answer a poll; older, the poll asks the API server itself.",
                             check=check_positive)
    timeout: float = setting(0.1, "Seconds a poll waits for the agent before it asks the API server itself.",
                             check=check_positive)
    health_port: int = setting(0, "Port of the agent's /healthz on 127.0.0.1. 0: none.", check=check_non_negative)
    idle_warning: int = setting(600, "Seconds before an idle reclaim the agent warns.", check=check_non_negative)
    prometheus_url: str = setting("", "Prometheus with DCGM exporter metrics (GPU idleness). Empty: none.",
                                  check=check_url)
    gpu_idle_threshold: float = setting(5.0, "GPU use (percent) at or under which a GPU is idle.", check=check_percent)
    deadline_warning: int = setting(600, "Seconds before a session's deadline the agent warns (its status reason "
                                    "and a file in the session's folder) that it will end, so the student can save "
                                    "or extend it ('ood-k8s job extend').", check=check_non_negative)
    namespace: str = setting("ood-k8s-system", "Namespace of the agents' own objects: the leader's Lease, the "
                             "usage ledger, warm-capacity placeholders. 'cluster render' creates it.",
                             check=check_dns_label)
    kubeconfig: str = setting("", "Root-only kubeconfig of the agent's own identity, so it holds only the agent's "
                              "rights ('cluster render' binds them to agent.subject). Empty: "
                              "cluster.provisioner_kubeconfig.", check=check_abs_path)
    subject: str = setting("", "Who agent.kubeconfig authenticates as: 'User:NAME', 'Group:NAME' or "
                           "'ServiceAccount:NAMESPACE/NAME'; bound to the agent's ClusterRole and Role. Empty: "
                           "cluster.provisioner_subject.", check=lambda v: check_subject(v) if v else None)
    lifecycle: bool = setting(True, "The agents elect a leader (a Lease in agent.namespace) that runs the session "
                              "lifecycle: deadlines, idle reclaim, stuck sessions, cleanup. false: polls only.")
    interval: float = setting(30.0, "Seconds between the leader's passes over the sessions.", check=check_positive)
    lease_duration: int = setting(15, "Seconds an unrenewed Lease keeps other agents out.", check=check_positive)
    renew_deadline: float = setting(10.0, "Seconds the leader acts unrenewed (< lease_duration).", check=check_positive)
    retry_period: float = setting(2.0, "Seconds between tries at the Lease (< renew_deadline).", check=check_positive)
    retention_days: float = setting(7.0, "Days a completed session's pod is kept once the usage ledger holds it "
                                    "(unrecorded: twice that); home data is never touched.", check=check_non_negative)
