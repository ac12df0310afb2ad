-- owner: projector
CREATE TABLE IF NOT EXISTS namespaces (
    id               integer PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    metadata         jsonb NOT NULL DEFAULT '{}'::jsonb,
    role_mappings    jsonb NOT NULL DEFAULT '{}'::jsonb,
    role_mappings_v2 jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_on       timestamptz NOT NULL,
    deleted_on       timestamptz
);
