-- owner: projector
CREATE TABLE IF NOT EXISTS environments (
    id               integer PRIMARY KEY,
    namespace_id     integer NOT NULL,
    namespace        text NOT NULL,
    name             text NOT NULL,
    current_build_id integer,
    description      text,
    created_on       timestamptz NOT NULL,
    deleted_on       timestamptz,
    UNIQUE (namespace, name)
);
CREATE INDEX IF NOT EXISTS environments_name_idx ON environments (name);
