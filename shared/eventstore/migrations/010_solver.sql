-- Solver: the solve cache and the channel package index. Both are caches rebuilt from outside
-- sources (repodata), never state, so they live beside the event log, not in it.

-- One solve result per (normalized request + repodata fingerprint): an identical spec against
-- unchanged channel metadata reuses it instead of calling the solver again.
-- owner: solver
CREATE TABLE IF NOT EXISTS solve_cache (
    cache_key   text        PRIMARY KEY,
    request     jsonb       NOT NULL,
    result      jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_hit_at timestamptz
);

-- Every record of every channel subdir the solver has read, for GET /package/ and /channel/.
-- owner: solver
CREATE TABLE IF NOT EXISTS channel_packages (
    channel      text    NOT NULL,
    subdir       text    NOT NULL,
    name         text    NOT NULL,
    version      text    NOT NULL,
    build        text    NOT NULL,
    build_number bigint  NOT NULL DEFAULT 0,
    license      text,
    summary      text,
    url          text    NOT NULL,
    md5          text,
    sha256       text,
    size         bigint,
    timestamp    timestamptz,
    depends      text[]  NOT NULL DEFAULT '{}',
    PRIMARY KEY (channel, subdir, name, version, build)
);
CREATE INDEX IF NOT EXISTS channel_packages_name ON channel_packages (name);
CREATE INDEX IF NOT EXISTS channel_packages_name_prefix
    ON channel_packages (lower(name) text_pattern_ops);
CREATE INDEX IF NOT EXISTS channel_packages_name_version ON channel_packages (name, version);

-- What each channel subdir looked like when it was last indexed; unchanged repodata is skipped.
-- owner: solver
CREATE TABLE IF NOT EXISTS channel_index_state (
    channel      text        NOT NULL,
    subdir       text        NOT NULL,
    fingerprint  text        NOT NULL,
    records      integer     NOT NULL,
    indexed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, subdir)
);
