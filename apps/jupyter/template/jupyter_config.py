# JupyterLab settings of an ood-k8s Jupyter session, loaded by script.sh with --config.
# Every value comes from the environment before.sh sets: nothing typed in the form becomes code.
import os

c = get_config()  # noqa: F821 -- Jupyter defines get_config() when it loads this file

# The pod's own network namespace: the portal's proxy connects to the pod IP (NetworkPolicy-guarded).
c.ServerApp.ip = "0.0.0.0"  # noqa: S104
c.ServerApp.port = int(os.environ["OOD_K8S_JUPYTER_PORT"])
c.ServerApp.port_retries = 0
# The portal's reverse proxy passes /node/<host>/<port>/... through unchanged.
c.ServerApp.base_url = os.environ["OOD_K8S_JUPYTER_BASE_URL"]
c.ServerApp.root_dir = os.environ.get("HOME", "/")
c.ServerApp.open_browser = False
# Requests arrive from the portal's proxy, with its X-Forwarded-Proto.
c.ServerApp.allow_remote_access = True
c.ServerApp.trust_xheaders = True
# The proxy talks to JupyterLab as <pod>:<port>, so browsers' Origin never equals Host: name the
# portal's origin (kernels and terminals are websockets, which only this check protects).
c.ServerApp.allow_origin = os.environ.get("OOD_K8S_PORTAL_ORIGIN") or "*"
c.ServerApp.terminado_settings = {"shell_command": ["/bin/bash", "-l"]}

# Password login: the portal's Connect button posts the password together with an XSRF token,
# so XSRF checks stay on. The plain password leaves the environment before any kernel starts.
_hashed = os.environ.get("OOD_K8S_JUPYTER_PASSWORD_HASH")
if not _hashed:
    from jupyter_server.auth import passwd

    _hashed = passwd(os.environ.pop("OOD_K8S_JUPYTER_PASSWORD"))
    os.environ["OOD_K8S_JUPYTER_PASSWORD_HASH"] = _hashed
c.PasswordIdentityProvider.hashed_password = _hashed
c.PasswordIdentityProvider.allow_password_change = False
c.IdentityProvider.token = ""

# SQLite databases lock up on NFS/EFS homes.
c.NotebookNotary.db_file = ":memory:"
