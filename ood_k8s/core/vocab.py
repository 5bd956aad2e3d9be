"""Every name ood-k8s persists outside the process, defined once.

Labels, annotations, tags, the hold gate, the field manager, the exec-credential API version: these
live on namespaces, pods, volumes and AWS resources, in users' kubeconfigs and in the admission
policy, so changing one orphans what exists.  The values are contracts; every other module (and
every template, through the Jinja global ``vocab``) takes them from here.
``tests/core/test_vocab.py`` fails if a module or template spells one by hand.

No imports: every process (each poll, each kubectl call, each login) loads this module.
"""

DOMAIN = "ood-k8s.io"
KEY_PREFIX = DOMAIN + "/"  # every key of ours starts with it; submissions may not set such keys
PRODUCT = "ood-k8s"

# --- who made an object ---------------------------------------------------------------------------
MANAGED_BY_KEY = "app.kubernetes.io/managed-by"
MANAGED_BY = PRODUCT
FIELD_MANAGER = PRODUCT  # server-side apply's owner of our fields
APP_NAME_LABEL = "app.kubernetes.io/name"  # a session pod's app (the container's name)

# --- labels ---------------------------------------------------------------------------------------
USER_LABEL = KEY_PREFIX + "user"  # the user's slug, on everything made for a user
JOB_LABEL = KEY_PREFIX + "job"  # on a session pod and its children
PROFILE_LABEL = KEY_PREFIX + "profile"
COMPONENT_LABEL = KEY_PREFIX + "component"
USER_COMPONENT = "user"  # COMPONENT_LABEL's value on a user's objects

# --- a user namespace: what the hook records and the admission guard trusts ------------------------
USERNAME_ANNOTATION = KEY_PREFIX + "username"  # the raw portal username
UID_ANNOTATION = KEY_PREFIX + "uid"
GID_ANNOTATION = KEY_PREFIX + "gid"
GIDS_ANNOTATION = KEY_PREFIX + "supplemental-gids"  # comma-separated, sorted, e.g. "30001,30002"; "" for none
HOME_ANNOTATION = KEY_PREFIX + "home"  # the one hostPath the guard allows (storage.mode hostpath)
PROFILES_ANNOTATION = KEY_PREFIX + "profiles"  # comma-separated profiles the user is entitled to (the guard reads it)
LAST_RUN_ANNOTATION = KEY_PREFIX + "last-hook-run"
HASH_ANNOTATION = KEY_PREFIX + "desired-state"
OBJECTS_ANNOTATION = KEY_PREFIX + "provisioned-objects"
POD_SECURITY_ENFORCE = "pod-security.kubernetes.io/enforce"
POD_SECURITY_WARN = "pod-security.kubernetes.io/warn"
POD_SECURITY_AUDIT = "pod-security.kubernetes.io/audit"

# --- a session pod --------------------------------------------------------------------------------
JOB_NAME_ANNOTATION = KEY_PREFIX + "job-name"
ACCOUNT_ANNOTATION = KEY_PREFIX + "account"
QUEUE_ANNOTATION = KEY_PREFIX + "queue"
SUBMIT_HOST_ANNOTATION = KEY_PREFIX + "submit-host"
HOLD_GATE = KEY_PREFIX + "hold"  # the scheduling gate of a job submitted on hold
KARPENTER_DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
COURSE_LABEL = KEY_PREFIX + "course"  # the course a session (or placeholder) belongs to

# --- a session's lifecycle, written by the submit and the agent's leader ---------------------------
WALLTIME_ANNOTATION = KEY_PREFIX + "walltime"  # seconds granted at submit, counted from status.startTime
DEADLINE_ANNOTATION = KEY_PREFIX + "deadline"  # RFC 3339 UTC: when the leader ends the session (extend writes it)
END_REASON_ANNOTATION = KEY_PREFIX + "end-reason"  # why the agent ended it: a code (deadline, idle, budget, ...)
END_MESSAGE_ANNOTATION = KEY_PREFIX + "end-message"  # ... and the one line the card and completed view show
WARNING_ANNOTATION = KEY_PREFIX + "warning"  # the warning the leader gave before ending it (one line)
WARNING_REASON_ANNOTATION = KEY_PREFIX + "warning-reason"  # ... and its code, so a warning is given once
RECORDED_ANNOTATION = KEY_PREFIX + "usage-recorded"  # the ledger holds this ended session (cleanup may delete it)
USAGE_FINALIZER = KEY_PREFIX + "usage-ledger"  # on a session pod (usage.finalizer): gone only once the ledger has it
USAGE_COMPONENT = "usage-ledger"  # COMPONENT_LABEL's value on the usage ledger's ConfigMaps (agent.namespace)
AGENT_COMPONENT = PRODUCT + "-agent"  # Events' reportingComponent / source.component; the Lease holder prefix
LEASE_NAME = PRODUCT + "-agent"  # the coordination.k8s.io Lease the portals' agents elect a leader with
KARPENTER_NODEPOOL_LABEL = "karpenter.sh/nodepool"

# --- warm capacity (capacity/): placeholder pods and the ad-hoc holds, in agent.namespace -----------
PLACEHOLDER_COMPONENT = "placeholder"  # COMPONENT_LABEL's value on a warm-capacity placeholder pod
WARM_HOLDS_COMPONENT = "warm-holds"  # COMPONENT_LABEL's value on the ad-hoc holds' ConfigMap
WARM_HOLDS_CONFIGMAP = PRODUCT + "-warm-holds"  # the ConfigMap 'ood-k8s capacity warm' records holds in
WARM_REASON_ANNOTATION = KEY_PREFIX + "warm-reason"  # on a placeholder: why it is held (one line)
WARM_UNTIL_ANNOTATION = KEY_PREFIX + "warm-until"  # on a placeholder: RFC 3339 UTC end of its hold
PREPULL_COMPONENT = "prepull"  # COMPONENT_LABEL's value on an image pre-puller DaemonSet
COURSE_MEMBER_PREFIX = "course." + DOMAIN + "/"  # + course name: label on a user namespace 'user sync --course'
                                                 # provisioned (what '--prune' finds); value "member"

# --- EFS homes: on the user's claim and on the access point (AWS tags) -----------------------------
EFS_ACCESS_POINT_ANNOTATION = KEY_PREFIX + "efs-access-point"
EFS_KEY_ANNOTATION = KEY_PREFIX + "efs-access-point-key"
EFS_USER_TAG = USER_LABEL
EFS_KEY_TAG = KEY_PREFIX + "key"

# --- kubeconfigs and the cluster ------------------------------------------------------------------
COMMAND = PRODUCT  # the console script users' kubeconfigs run (``ood-k8s credential …``)
EXEC_API = "client.authentication.k8s.io/v1"  # the ExecCredential version we write and prefer
EXEC_API_V1BETA1 = "client.authentication.k8s.io/v1beta1"
EXEC_APIS = (EXEC_API, EXEC_API_V1BETA1)  # what the credential plugin answers
IDENTITY_PROVIDER = PRODUCT  # the EKS OIDC identity provider's name
