"""Where ood-k8s's installed commands are, for the files that name them (kubeconfigs, OOD config).

Beside the running interpreter first (a virtualenv's ``bin/``), then on PATH: the command written
into a file must be the one of the installation that wrote it.
"""

import os
import shutil
import sys
from typing import Optional


def installed(name: str) -> Optional[str]:
    """Absolute path of the executable ``name`` of this installation, or None."""
    beside = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    found = shutil.which(name)
    return os.path.abspath(found) if found else None
