-- The webhook dispatcher's own state (services/api/webhooks/): its only writer and reader.
-- Registrations are events (stream ``webhooks``); these rows say how far each webhook's
-- deliveries have got and how the last attempts went, so a dispatcher that restarts (or a
-- standby that takes over) resumes each webhook where it stopped.

-- One row per live webhook. ``position``: every event up to it was delivered or not wanted;
-- ``failures``: failed attempts in a row at the event after it; ``replay_version``: the
-- webhooks stream version of the last WebhookReplayRequested applied (so one applies once).
-- owner: webhooks
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    webhook_id              text        PRIMARY KEY,
    position                bigint      NOT NULL,
    replay_version          bigint      NOT NULL DEFAULT 0,
    status                  text        NOT NULL DEFAULT 'pending',
    failures                integer     NOT NULL DEFAULT 0,
    attempts                bigint      NOT NULL DEFAULT 0,
    delivered               bigint      NOT NULL DEFAULT 0,
    last_error              text,
    last_status_code        integer,
    last_attempt_at         timestamptz,
    next_attempt_at         timestamptz,
    last_delivered_position bigint,
    last_delivered_event_id uuid,
    last_delivered_type     text,
    last_delivered_at       timestamptz
);

-- The latest attempts of each webhook (the dispatcher keeps the last 100 of each).
-- owner: webhooks
CREATE TABLE IF NOT EXISTS webhook_attempts (
    id           bigserial   PRIMARY KEY,
    webhook_id   text        NOT NULL,
    position     bigint      NOT NULL,
    event_id     uuid        NOT NULL,
    event_type   text        NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    duration_ms  integer     NOT NULL,
    status_code  integer,
    error        text
);
CREATE INDEX IF NOT EXISTS webhook_attempts_by_webhook ON webhook_attempts (webhook_id, id);
