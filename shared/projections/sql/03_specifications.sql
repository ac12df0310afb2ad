-- owner: projector
CREATE TABLE IF NOT EXISTS specifications (
    id         integer PRIMARY KEY,
    name       text NOT NULL,
    spec       jsonb NOT NULL,
    sha256     text NOT NULL UNIQUE,
    created_on timestamptz NOT NULL
);
