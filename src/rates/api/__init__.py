"""The HTTP API: app factory, routes per feature, error handlers."""
