-- Idempotent consumers: a row per (consumer, message) written in the same transaction as the
-- events the handler appends, so a redelivered message is recognised and yields nothing new.
-- owner: eventstore
CREATE TABLE IF NOT EXISTS tracking (
    consumer     text        NOT NULL,
    message_key  text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_key)
);

-- Where each tailing reader (relay, projector) has got to in the log.
-- owner: eventstore
CREATE TABLE IF NOT EXISTS positions (
    name     text   PRIMARY KEY,
    position bigint NOT NULL
);

-- Integer ids in the conda-store API are allocated here, before the event that uses them.
CREATE SEQUENCE IF NOT EXISTS build_id_seq;
