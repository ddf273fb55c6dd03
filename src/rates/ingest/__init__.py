"""Batch ingestion: formats and validation, payload storage, the batch registry, the worker."""
