-- Distinct conda packages per channel (conda-store's conda_channel / conda_package), fed from
-- build_packages by the projector's store: /channel/ and /package/ read these, with ids.
-- owner: projector
CREATE TABLE IF NOT EXISTS conda_channels (
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    last_update timestamptz
);
-- owner: projector
CREATE TABLE IF NOT EXISTS conda_packages (
    id         serial PRIMARY KEY,
    channel_id integer NOT NULL,
    name       text NOT NULL,
    version    text NOT NULL,
    license    text,
    summary    text,
    UNIQUE (channel_id, name, version)
);
CREATE INDEX IF NOT EXISTS conda_packages_name_idx ON conda_packages (name, version);
DO $$ BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN NULL;
END $$;
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX IF NOT EXISTS conda_packages_name_trgm
            ON conda_packages USING gin (name gin_trgm_ops);
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS environments_live_idx ON environments (namespace, name)
    WHERE deleted_on IS NULL;
CREATE INDEX IF NOT EXISTS build_artifacts_build_idx ON build_artifacts (build_id);
