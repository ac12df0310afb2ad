-- Every package build of the channel subdirs the solver has read, for /package/?build=...;
-- conda_packages holds their distinct (channel, name, version) rows.
-- owner: projector
CREATE TABLE IF NOT EXISTS conda_package_builds (
    channel  text NOT NULL,
    subdir   text NOT NULL,
    name     text NOT NULL,
    version  text NOT NULL,
    build    text NOT NULL,
    license  text,
    PRIMARY KEY (channel, subdir, name, version, build)
);
CREATE INDEX IF NOT EXISTS conda_package_builds_name ON conda_package_builds (name, version);
