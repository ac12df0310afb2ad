-- The latest update check of each environment (UpdateCheckRequested / UpdateChecked), for the
-- environment page and GET /api/v1/environment/<ns>/<name>/updates/; the events keep the history.
-- owner: projector
CREATE TABLE IF NOT EXISTS update_checks (
    namespace    text        NOT NULL,
    environment  text        NOT NULL,
    build_id     integer     NOT NULL,
    requested_at timestamptz,
    checked_at   timestamptz,
    updates      jsonb       NOT NULL DEFAULT '[]'::jsonb,
    changed      integer     NOT NULL DEFAULT 0,
    error        text,
    PRIMARY KEY (namespace, environment)
);
