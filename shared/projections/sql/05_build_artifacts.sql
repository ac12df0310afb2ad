-- owner: projector
CREATE TABLE IF NOT EXISTS build_artifacts (
    id            integer PRIMARY KEY,
    build_id      integer NOT NULL,
    artifact_type text NOT NULL,
    key           text NOT NULL,
    UNIQUE (build_id, artifact_type)
);
