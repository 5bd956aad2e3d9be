"""The sessions app's files, as ``ood-k8s ood config --out DIR`` writes them (``DIR/ood_k8s/apps/sessions``).

OOD finds system apps in ``/var/www/ood/apps/sys/<dir>``; an admin links that directory there once
(``ln -s /etc/ood/config/ood_k8s/apps/sessions /var/www/ood/apps/sys/sessions``) and every later
``ood config`` keeps it current.  Its ``passenger_wsgi.py`` names the Python ood-k8s is installed
in: Passenger starts apps with its own ``passenger_python``, which need not import ood_k8s, so the
file re-executes itself in ood-k8s's interpreter first (Passenger's documented way to use a
virtualenv).  Pure builders; :func:`ood_k8s.ood.files.write` writes them.
"""

from __future__ import annotations

APP_DIR = "ood_k8s/apps/sessions"
# Where OOD serves it once linked as /var/www/ood/apps/sys/sessions (the Jupyter app's cards link here).
URL = "/pun/sys/sessions"

MANIFEST = """---
name: My GPU sessions
category: Jobs
description: |
  Your sessions on the Kubernetes cluster: why each is waiting or why it ended, how long it has left,
  and a button to extend it; your GPU-hours used and left this term; for instructors, their course.
icon: fa://hourglass-half
"""

PASSENGER = '''"""The "My GPU sessions" app (ood_k8s.webapp), run by OOD's Passenger as the user."""
import os
import sys

PYTHON = {python!r}  # the interpreter ood-k8s is installed in
if os.path.realpath(sys.executable) != os.path.realpath(PYTHON):
    os.execl(PYTHON, PYTHON, *sys.argv)  # Passenger's own Python: start again in ood-k8s's

from ood_k8s.webapp.app import application  # noqa: E402,F401 - what Passenger calls
'''


def app_files(marker: str, source: str, python: str) -> dict[str, str]:
    """Relative path -> content of the app's files; ``marker`` opens each (so ``write`` may replace them)."""
    if not python.startswith("/"):
        raise ValueError(f"interpreter path {python!r} is not absolute")
    header = f"# {marker} from {source}: re-run it instead of editing this file.\n"
    return {f"{APP_DIR}/manifest.yml": header + MANIFEST,
            f"{APP_DIR}/passenger_wsgi.py": header + PASSENGER.format(python=python)}
