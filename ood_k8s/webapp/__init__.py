"""The "My GPU sessions" Open OnDemand app (``apps/sessions``): a WSGI app OOD runs as the user.

* :mod:`~ood_k8s.webapp.app`   -- the WSGI application: who asks, routing, CSRF, responses, banners;
* :mod:`~ood_k8s.webapp.data`  -- where the pages' data comes from: the agent's socket, else the API
  server with the user's own credentials (the agent alone can show an instructor their students);
* :mod:`~ood_k8s.webapp.rows`  -- pure: an OOD ``Info`` (as JSON) -> what a page shows of a session;
* :mod:`~ood_k8s.webapp.chart` -- pure: GPU-hour budgets -> an inline SVG bar chart's geometry;
* :mod:`~ood_k8s.webapp.pages` -- the Jinja2 templates (``templates/webapp/``, a site may override them);
* :mod:`~ood_k8s.webapp.install` -- the app's files ``ood-k8s ood config --out`` writes.
"""
