-- One round trip per append: lock, check the expected version, insert, notify.
-- p_expected NULL means "any version"; 0 means "the stream must not exist yet".
CREATE OR REPLACE FUNCTION append_events(p_stream text, p_expected bigint, p_events jsonb)
RETURNS TABLE (global_position bigint, version bigint, recorded_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    v_current bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(4242000001);
    SELECT coalesce(max(e.version), 0) INTO v_current FROM events e WHERE e.stream = p_stream;
    IF p_expected IS NOT NULL AND p_expected <> v_current THEN
        RAISE EXCEPTION 'stream % is at version %, expected %', p_stream, v_current, p_expected
            USING ERRCODE = 'CS001', DETAIL = v_current::text;
    END IF;
    RETURN QUERY
        INSERT INTO events AS ev (stream, version, event_id, type, schema_version, data, metadata,
                                  occurred_at)
        SELECT p_stream, v_current + t.ord, (t.e->>'event_id')::uuid, t.e->>'type',
               (t.e->>'schema_version')::int, t.e->'data', t.e->'metadata',
               (t.e->>'occurred_at')::timestamptz
        FROM jsonb_array_elements(p_events) WITH ORDINALITY AS t(e, ord)
        ORDER BY t.ord
        RETURNING ev.global_position, ev.version, ev.recorded_at;
    PERFORM pg_notify('cs_events', p_stream);
END;
$$;
