"""Logs and metrics. ``metrics`` is imported only by the processes that serve metrics, after
``rates serve`` has set PROMETHEUS_MULTIPROC_DIR (prometheus_client reads it at import)."""
