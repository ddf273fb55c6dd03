"""AWS Lambda entry points (the same image as the service, run by awslambdaric).

``handle``: S3 "object created" events -> one queued batch per stored object version: an
object that already belongs to a batch (redelivered event, an API upload's own object) returns
that batch, so S3's at-least-once delivery never makes two batches of one upload.
``report_queue_depth``: publishes the number of queued batches and the oldest one's age to
CloudWatch, per environment, which scales the worker service (from zero) on them.
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3

from rates.db.connection import connect
from rates.ingest.batches import QUEUE_METRICS
from rates.ingest.submit import register_s3_object, s3_event_objects
from rates.settings import Settings
from rates.storage import PayloadStore

METRIC_NAMESPACE = "Rates"


def lambda_settings() -> Settings:
    """Settings from the environment; Lambda has no ECS ``secrets``, so the database password
    comes from the Secrets Manager secret named by RATES_DB_PASSWORD_SECRET_ARN (JSON key
    ``password``) when that variable is set."""
    arn = os.environ.get("RATES_DB_PASSWORD_SECRET_ARN")
    if not arn:
        return Settings()
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    return Settings(db_password=json.loads(secret)["password"])


def handle(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    settings = lambda_settings()
    store = PayloadStore(settings)
    results = []
    with connect(settings, autocommit=True) as conn:
        for bucket, key, version_id in s3_event_objects(event):
            registration = register_s3_object(
                conn, store, bucket, key, source="s3-event", version_id=version_id
            )
            results.append(
                {"key": key, "batch_id": registration.id, "created": registration.created}
            )
    return {"batches": results}


def report_queue_depth(event: Any = None, context: Any = None) -> dict[str, float]:
    settings = lambda_settings()
    with connect(settings, autocommit=True) as conn:
        queued, _, oldest_age_s, _ = conn.execute(QUEUE_METRICS).fetchone()  # type: ignore[misc]
    # Only batches waiting: those being applied are kept by their workers' scale-in protection.
    figures = {
        "IngestQueuedBatches": float(queued),
        "IngestOldestQueuedAgeSeconds": float(oldest_age_s),
    }
    # Two copies in one account must not scale each other's workers.
    dimensions = [{"Name": "Environment", "Value": settings.environment}]
    boto3.client("cloudwatch").put_metric_data(
        Namespace=METRIC_NAMESPACE,
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": dimensions,
                "Value": value,
                "Unit": "Count" if name == "IngestQueuedBatches" else "Seconds",
            }
            for name, value in figures.items()
        ],
    )
    return figures
