-- owner: projector
CREATE TABLE IF NOT EXISTS builds (
    id               integer PRIMARY KEY,
    environment_id   integer NOT NULL,
    namespace        text NOT NULL,
    environment      text NOT NULL,
    specification_id integer NOT NULL,
    status           text NOT NULL,
    status_info      text,
    size             bigint NOT NULL DEFAULT 0,
    build_key        text NOT NULL DEFAULT '',
    is_lockfile      boolean NOT NULL DEFAULT false,
    scheduled_on     timestamptz NOT NULL,
    started_on       timestamptz,
    ended_on         timestamptz,
    deleted_on       timestamptz
);
CREATE INDEX IF NOT EXISTS builds_environment_idx ON builds (environment_id, id);
CREATE INDEX IF NOT EXISTS builds_status_idx ON builds (status);
-- the image of a completed build (ImagePushed / ImageFailed); added after the first release
ALTER TABLE builds ADD COLUMN IF NOT EXISTS image_status text;
ALTER TABLE builds ADD COLUMN IF NOT EXISTS image_reason text;
ALTER TABLE builds ADD COLUMN IF NOT EXISTS image_digest text;
