-- The reference schedule schema of chaos-mcp (docs/data-schema.md). Idempotent.
-- Deliberately permissive, like many application-validated schemas: keys are enforced,
-- references and values are not, so that bad data can exist and the system's own
-- validation is what catches it.
CREATE TABLE IF NOT EXISTS people (
    id                 text PRIMARY KEY,
    name               text NOT NULL,
    kind               text NOT NULL,            -- faculty | resident
    role               text,                     -- faculty: program_director, core_faculty, …
    pgy                integer,                  -- residents: 1..3
    half_days_per_week integer,                  -- faculty clinical capacity
    specialties        text[] NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS blocks (
    id   integer PRIMARY KEY,                    -- 2*day (AM) and 2*day+1 (PM) from the start
    day  date NOT NULL,
    half text NOT NULL                           -- AM | PM
);
CREATE TABLE IF NOT EXISTS services (
    id                   text PRIMARY KEY,
    name                 text NOT NULL,
    min_faculty          integer NOT NULL DEFAULT 1,
    days_of_week         integer[] NOT NULL DEFAULT '{0,1,2,3,4,5,6}',   -- 0 = Monday
    halves               text[] NOT NULL DEFAULT '{AM,PM}',
    supervised           boolean NOT NULL DEFAULT true,
    required_credentials text[] NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS assignments (
    id         bigserial PRIMARY KEY,
    person_id  text NOT NULL,
    block_id   integer NOT NULL,
    service_id text NOT NULL,
    role       text,                             -- primary | supervising | backup
    hours      double precision
);
CREATE INDEX IF NOT EXISTS assignments_person_block ON assignments (person_id, block_id);
CREATE TABLE IF NOT EXISTS absences (
    id          bigserial PRIMARY KEY,
    person_id   text NOT NULL,
    start_block integer NOT NULL,
    end_block   integer NOT NULL,                -- inclusive
    reason      text NOT NULL DEFAULT 'leave'
);
CREATE TABLE IF NOT EXISTS credentials (
    id        bigserial PRIMARY KEY,
    person_id text NOT NULL,
    name      text NOT NULL,
    expires   date                               -- valid on days strictly before; NULL = no expiry
);
CREATE INDEX IF NOT EXISTS credentials_person ON credentials (person_id);
