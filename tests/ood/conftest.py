"""The portal-in-a-box fixtures of test_app_erb.py, shared by every test of the OOD side."""

from __future__ import annotations

from tests.ood.test_app_erb import kubelet, site, site_root  # noqa: F401 - fixtures
