-- One stored object, one batch. Since this version an S3 payload's storage_uri pins the object's
-- version (s3://bucket/key?versionId=...; ?etag=... where the bucket keeps no versions), and no
-- two batches may name the same pinned object: an API upload and an S3 event for that very
-- object become one batch however they race. Unpinned URIs registered before may repeat (the
-- double-registered uploads this fixes), so the index leaves them out; local file URIs are
-- unique by name anyway.
CREATE UNIQUE INDEX batches_stored_object_key ON batches (storage_uri)
    WHERE storage_uri ~ '^s3://[^/]+/.+\?(versionId|etag)=';

-- A payload whose sha256 is not the one registered fails for good (it changed in storage): an
-- attempt can now end 'failed'. Widening the check keeps older workers valid.
ALTER TABLE batch_attempts DROP CONSTRAINT batch_attempts_outcome_check;
ALTER TABLE batch_attempts ADD CONSTRAINT batch_attempts_outcome_check CHECK (outcome IN
    ('succeeded', 'rejected', 'failed', 'error', 'interrupted', 'crashed'));
