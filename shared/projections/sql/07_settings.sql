-- conda-store runtime settings by level: '' (global), 'ns', 'ns/env'.
-- owner: projector
CREATE TABLE IF NOT EXISTS runtime_settings (
    level_key text PRIMARY KEY,
    data      jsonb NOT NULL DEFAULT '{}'::jsonb
);
