-- Where each projection is in the space-events topic: the next offset to apply per
-- topic partition, written in the same transaction as the rows of the batch it ends.
-- A projector starts from here (not from Kafka's committed offsets) and skips records
-- below it, so a batch redelivered after a crash is applied once.
CREATE TABLE projector_offsets (
    projection  text        NOT NULL,           -- registry | reservations | activity
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    next_offset bigint      NOT NULL,           -- -1: nothing applied yet
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, topic, partition)
);
