-- The append-only event log. global_position follows commit order because appends are
-- serialized by a transaction-scoped advisory lock (see append_events).
-- owner: eventstore
CREATE TABLE IF NOT EXISTS events (
    global_position bigserial PRIMARY KEY,
    stream          text        NOT NULL,
    version         bigint      NOT NULL,
    event_id        uuid        NOT NULL UNIQUE,
    type            text        NOT NULL,
    schema_version  integer     NOT NULL DEFAULT 1,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (stream, version)
);
CREATE INDEX IF NOT EXISTS events_type_idx ON events (type, global_position);
