"""Open OnDemand runs this app in the user's own nginx (Passenger), as the user: see ood_k8s/webapp/app.py.
Passenger's Python must import ood_k8s; 'ood-k8s ood config --out' writes a copy that starts ood-k8s's own."""
from __future__ import annotations

from ood_k8s.webapp.app import application  # noqa: F401 - what Passenger calls
