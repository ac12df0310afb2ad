-- Leases: one running attempt per (consumer, message), across processes and machines.
-- JetStream redelivers a message whose ack deadline passed (a stalled network, a paused
-- server) even while the first attempt still runs; the redelivery starts work only when it can
-- take the lease. The running attempt renews expires_at; a dead holder's lease simply expires.
-- ``attempt`` counts attempts that really started and is the fencing token: an attempt may
-- commit only while the row still carries its number (checked in the commit transaction).
-- owner: eventstore
CREATE TABLE IF NOT EXISTS leases (
    consumer     text        NOT NULL,
    message_key  text        NOT NULL,
    attempt      integer     NOT NULL,
    holder       text        NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (consumer, message_key)
);
