-- The current term of each single-writer role (relay, projector). A new leader increments it;
-- a leader's writes check it in the same transaction, so one that was paused while a standby
-- took over can no longer write (see shared/eventstore/leader.py).
-- owner: eventstore
CREATE TABLE IF NOT EXISTS leader_terms (
    role text   PRIMARY KEY,
    term bigint NOT NULL
);
