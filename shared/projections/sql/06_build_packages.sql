-- owner: projector
CREATE TABLE IF NOT EXISTS build_packages (
    build_id integer NOT NULL,
    idx      integer NOT NULL,
    manager  text NOT NULL,
    name     text NOT NULL,
    version  text NOT NULL,
    build    text NOT NULL DEFAULT '',
    channel  text NOT NULL DEFAULT '',
    subdir   text NOT NULL DEFAULT '',
    url      text NOT NULL DEFAULT '',
    sha256   text,
    md5      text,
    size     bigint,
    license  text,
    summary  text,
    PRIMARY KEY (build_id, idx)
);
CREATE INDEX IF NOT EXISTS build_packages_name_idx ON build_packages (name, build_id);
