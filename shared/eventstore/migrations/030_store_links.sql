-- The store directory's own state. Writer and only reader: the packer's store linker
-- (services/packer/linker.py), which folds build and environment events into it, in order,
-- to decide which prefix each <store>/<namespace>/envs/<name> link points at and which build
-- directories to remove. Several packers share these rows (and the store volume); the
-- linker's consumer delivers one event at a time, so their decisions never interleave.

-- One row per build the linker has heard of; ``prefix`` is <store>/<namespace>/<build key>.
-- status: pending (not packed yet), complete (packed: may be linked), gone (failed, canceled
-- or deleted: its directory is removed and never linked again).
-- owner: packer
CREATE TABLE IF NOT EXISTS store_builds (
    build_id    bigint PRIMARY KEY,
    namespace   text   NOT NULL,
    environment text   NOT NULL,
    prefix      text   NOT NULL,
    status      text   NOT NULL
);
CREATE INDEX IF NOT EXISTS store_builds_environment ON store_builds (namespace, environment);

-- The build each envs/<name> link points at (NULL: no link).
-- owner: packer
CREATE TABLE IF NOT EXISTS store_links (
    namespace        text   NOT NULL,
    environment      text   NOT NULL,
    current_build_id bigint,
    PRIMARY KEY (namespace, environment)
);
