-- Live build logs: every phase appends lines as they happen; readers stream by seq while the
-- build runs. Logs are diagnostics, not state, so they live beside the event log, not in it.
-- owner: eventstore
CREATE TABLE IF NOT EXISTS build_logs (
    build_id  bigint      NOT NULL,
    seq       bigserial   NOT NULL,
    phase     text        NOT NULL,
    line      text        NOT NULL,
    logged_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (build_id, seq)
);
