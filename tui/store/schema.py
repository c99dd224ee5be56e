"""Schema and migrations, keyed on ``PRAGMA user_version`` (as oterm does).

``MIGRATIONS[n - 1]`` takes a database from version ``n - 1`` to version ``n``. Each step is
one SQL script applied in a single transaction together with its ``user_version`` bump, so a
crash in the middle of an upgrade leaves the previous version intact. Steps are never edited
once released: a change to the schema is a new step at the end (simonw/llm's rule). Every
step must fail when applied twice (no ``IF NOT EXISTS``): two writers opening an old database
at once both try the upgrade, and the loser notices from that failure that it is done.

Every table is keyed on tokentop's own ids (integer rowids, and run ids from
:func:`tui.stream.events.new_run_id`); server ids (response ids, request ids) are plain
columns, because some servers reuse them.
"""

from __future__ import annotations

APPLICATION_ID = 0x746F6B74
"""``PRAGMA application_id`` of a tokentop database ("tokt"), to refuse foreign SQLite files."""

V1 = f"""
CREATE TABLE sessions (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    config_json TEXT NOT NULL,           -- the SessionConfig as used, secrets removed
    config_hash TEXT NOT NULL UNIQUE,    -- sha256 of config_json: one row per distinct snapshot
    created_at  TEXT NOT NULL
);

CREATE TABLE runs (
    id                INTEGER PRIMARY KEY,
    run_id            TEXT NOT NULL UNIQUE,   -- tokentop's id, never the server's
    session_id        INTEGER NOT NULL REFERENCES sessions(id),
    session_name      TEXT NOT NULL,
    api               TEXT NOT NULL,
    model             TEXT NOT NULL,
    prompt            TEXT NOT NULL,
    started_at        TEXT NOT NULL,          -- wall time, ISO 8601 UTC
    first_token_s     REAL,                   -- offsets in seconds since the run started
    ended_s           REAL,
    status            TEXT NOT NULL DEFAULT 'running',
    finish_reason     TEXT,
    raw_finish_reason TEXT,
    input_tokens      INTEGER,
    output_tokens     INTEGER,
    reasoning_tokens  INTEGER,
    cached_tokens     INTEGER,
    total_tokens      INTEGER,
    tokens_estimated  INTEGER NOT NULL DEFAULT 1,
    ttft_ms           REAL,
    duration_ms       REAL,
    tokens_per_s      REAL,
    itl_p50_ms        REAL,
    itl_p95_ms        REAL,
    itl_p99_ms        REAL,
    chunks            INTEGER NOT NULL DEFAULT 0,
    attempts          INTEGER NOT NULL DEFAULT 0,
    resumes           INTEGER NOT NULL DEFAULT 0,
    error_kind        TEXT,
    error_status      INTEGER,
    error_message     TEXT,
    error_code        TEXT,
    response_id       TEXT,
    request_id        TEXT,
    output_text       TEXT NOT NULL DEFAULT '',
    reasoning_text    TEXT NOT NULL DEFAULT '',
    tool_calls_json   TEXT NOT NULL DEFAULT '[]',
    writer_pid        INTEGER
);
CREATE INDEX runs_by_started ON runs(started_at);

CREATE TABLE attempts (
    id            INTEGER PRIMARY KEY,
    run           INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    number        INTEGER NOT NULL,
    at_s          REAL NOT NULL,              -- offset of the attempt's request
    mode          TEXT,                       -- retry | resume | restart (attempts after the first)
    http_status   INTEGER,
    request_id    TEXT,
    cause_kind    TEXT,                       -- why this attempt ended early
    cause_status  INTEGER,
    cause_message TEXT,
    resumed_after INTEGER,                    -- Responses sequence number resumed after
    last_event_id TEXT,
    output_text   TEXT,                       -- partial output given up by a restart
    reasoning_text TEXT,
    UNIQUE (run, number)
);

CREATE TABLE events (
    run     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,                 -- 0, 1, 2, ... per run, in arrival order
    t       REAL NOT NULL,                    -- seconds since the run started
    kind    TEXT NOT NULL,                    -- event class name (tui.stream.events.EVENT_TYPES)
    payload BLOB NOT NULL,                    -- msgspec JSON of the event dataclass
    PRIMARY KEY (run, seq)
) WITHOUT ROWID;

PRAGMA application_id = {APPLICATION_ID};
"""
"""Version 1: sessions, runs, attempts and events."""

V2 = """
-- Full-text search over prompts and outputs. The trigram tokenizer indexes every
-- three-character window, so it matches substrings in any script: Korean, Japanese and
-- Chinese have no spaces between words (or attach particles to them), which defeats the
-- unicode61 tokenizer's word splitting. Runs are indexed once they end (while running,
-- their text changes every flush), and kept in sync by triggers.
CREATE VIRTUAL TABLE runs_fts USING fts5(
    prompt, output_text, reasoning_text,
    content='runs', content_rowid='id', tokenize='trigram'
);

CREATE TRIGGER runs_fts_ended AFTER UPDATE OF status ON runs
WHEN old.status = 'running' AND new.status <> 'running' BEGIN
    INSERT INTO runs_fts(rowid, prompt, output_text, reasoning_text)
    VALUES (new.id, new.prompt, new.output_text, new.reasoning_text);
END;

CREATE TRIGGER runs_fts_inserted AFTER INSERT ON runs
WHEN new.status <> 'running' BEGIN
    INSERT INTO runs_fts(rowid, prompt, output_text, reasoning_text)
    VALUES (new.id, new.prompt, new.output_text, new.reasoning_text);
END;

CREATE TRIGGER runs_fts_changed AFTER UPDATE OF prompt, output_text, reasoning_text ON runs
WHEN old.status <> 'running' AND new.status <> 'running' BEGIN
    INSERT INTO runs_fts(runs_fts, rowid, prompt, output_text, reasoning_text)
    VALUES ('delete', old.id, old.prompt, old.output_text, old.reasoning_text);
    INSERT INTO runs_fts(rowid, prompt, output_text, reasoning_text)
    VALUES (new.id, new.prompt, new.output_text, new.reasoning_text);
END;

CREATE TRIGGER runs_fts_deleted AFTER DELETE ON runs
WHEN old.status <> 'running' BEGIN
    INSERT INTO runs_fts(runs_fts, rowid, prompt, output_text, reasoning_text)
    VALUES ('delete', old.id, old.prompt, old.output_text, old.reasoning_text);
END;

INSERT INTO runs_fts(rowid, prompt, output_text, reasoning_text)
SELECT id, prompt, output_text, reasoning_text FROM runs WHERE status <> 'running';

-- history filters
CREATE INDEX runs_by_session ON runs(session_name, started_at);
CREATE INDEX runs_by_model ON runs(model, started_at);
"""
"""Version 2: FTS5 (trigram) over prompts and outputs, and indexes for history filters."""

V3 = """
-- Several tokentop writers may share a database: each run records the token of the writer
-- that owns it (tui.store.lock), so that a new writer marks `running` runs `interrupted`
-- only when their owner is dead. Runs written before have no owner (NULL).
ALTER TABLE runs ADD COLUMN owner TEXT;
CREATE INDEX runs_running ON runs(owner) WHERE status = 'running';
"""
"""Version 3: the owner (writer token) of each run."""

V4 = """
-- The compact form of text and reasoning deltas, most of a run's events: one row per
-- stretch of deltas of one kind that one flush wrote (tui.store.compact). `seq` is the
-- first delta's place among the run's events (the numbering `events` uses). `body` is
-- zlib-compressed: a width byte (0: the deltas are consecutive events, 1 or 4: each gap
-- to the next delta's seq in that many bytes), `count` float64 times (little-endian: each
-- delta's `t` exactly), the gaps, and a JSON array of the pieces. Events rows and deltas
-- rows together are the run's events, ordered by seq. Runs written before keep their
-- deltas in `events`, which stays readable as it was.
CREATE TABLE deltas (
    run    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,                  -- seq of the first delta of the row
    kind   TEXT NOT NULL,                     -- TextDelta | ReasoningDelta
    count  INTEGER NOT NULL,                  -- deltas in the row
    last_t REAL,                              -- t of the last one (NULL when not finite)
    body   BLOB NOT NULL,                     -- zlib: width, times, gaps, JSON pieces
    PRIMARY KEY (run, seq)
) WITHOUT ROWID;

-- Every alert a session's runs raised (tui.session.alerts). The run may be missing from
-- the store (recording had stopped): `run_id` is kept as given, `run` links it when stored,
-- so that pruning a run removes its alerts.
CREATE TABLE alerts (
    id           INTEGER PRIMARY KEY,
    run          INTEGER REFERENCES runs(id) ON DELETE CASCADE,
    run_id       TEXT NOT NULL,
    session_name TEXT NOT NULL,
    metric       TEXT NOT NULL,
    value        REAL,
    threshold    REAL,
    message      TEXT NOT NULL,
    at           TEXT NOT NULL                -- wall time, ISO 8601 UTC (as started_at)
);
CREATE INDEX alerts_by_run ON alerts(run);
CREATE INDEX alerts_by_session ON alerts(session_name, at);
CREATE INDEX alerts_by_time ON alerts(at);

-- Statistics over time (tui.store.stats) read only these columns of a session's window: a
-- covering index answers them without reading the rows, whose text makes them large. Its
-- leading columns are runs_by_session's, which it replaces for the history filters.
CREATE INDEX runs_stats ON runs(
    session_name, started_at, status, finish_reason, ttft_ms, tokens_per_s, duration_ms
);
DROP INDEX runs_by_session;
"""
"""Version 4: compact delta rows (``deltas``), the ``alerts`` table, and a covering index for
per-session statistics."""

V5 = """
-- Compare rounds (tui.store.rounds): one prompt sent `count` times to each of several
-- sessions, the round's columns, in the order `run_order` names. `round_id` is tokentop's
-- id; times are wall time, ISO 8601 UTC, as runs.started_at. `owner` is the token of the
-- writer running the round (tui.store.lock): a new writer marks the running rounds of a
-- dead owner `interrupted`, as it does their runs.
CREATE TABLE rounds (
    id            INTEGER PRIMARY KEY,
    round_id      TEXT NOT NULL UNIQUE,       -- tokentop's id, never a server's
    started_at    TEXT NOT NULL,
    ended_at      TEXT,
    prompt        TEXT NOT NULL,
    count         INTEGER NOT NULL,           -- runs per column
    run_order     TEXT NOT NULL,              -- how the columns took turns (the runner's word)
    status        TEXT NOT NULL DEFAULT 'running',  -- then done, cancelled, failed, interrupted
    sessions_json TEXT NOT NULL,              -- JSON array: the columns' session names, in order
    owner         TEXT
);
CREATE INDEX rounds_by_started ON rounds(started_at);
CREATE INDEX rounds_running ON rounds(owner) WHERE status = 'running';

-- The runs of each round: which column (`session`) and which of its runs (`number`, from
-- 1). A run belongs to one round at most. Pruning a run deletes its row here (ON DELETE
-- CASCADE); a round that pruning leaves without runs is deleted too (tui.store.retention).
CREATE TABLE round_runs (
    run     INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    round   INTEGER NOT NULL REFERENCES rounds(id) ON DELETE CASCADE,
    session TEXT NOT NULL,
    number  INTEGER NOT NULL
);
CREATE INDEX round_runs_by_round ON round_runs(round);
"""
"""Version 5: compare rounds (``rounds``) and the runs that belong to them (``round_runs``)."""

V6 = """
-- Conversations: every run is a turn (`turn`, from 1) of a conversation, and the runs of one
-- conversation share its `conversation_id` (tokentop's id, never a server's). A NULL
-- conversation_id means the run is a one-turn conversation of its own, whose id is the
-- run's own run_id: every run written before is one (and adding a column with no default
-- to fill in leaves the existing rows as they are, instead of rewriting every row and its
-- text in one long transaction). `coalesce(conversation_id, run_id)` is a run's
-- conversation everywhere (tui.store.conversations). runs_by_conversation gives a
-- conversation's runs in turn order. runs_by_activity holds every run's start and
-- conversation, newest last: the latest conversations are read from its end, without
-- reading the rows (whose new columns come after their text, in overflow pages); it
-- replaces runs_by_started, whose leading column it has.
ALTER TABLE runs ADD COLUMN conversation_id TEXT;
ALTER TABLE runs ADD COLUMN turn INTEGER NOT NULL DEFAULT 1;
CREATE INDEX runs_by_conversation ON runs(conversation_id, turn, started_at);
CREATE INDEX runs_by_activity ON runs(started_at, conversation_id, run_id);
DROP INDEX runs_by_started;
"""
"""Version 6: the conversation and turn of each run."""

V7 = """
-- What a run's figures measured (issue 13). The inter-chunk latency is itl_p50_ms /
-- itl_p95_ms / itl_p99_ms (per content chunk, as ever: a chunk may carry several tokens).
-- tpot_ms is the time per output token, (duration - TTFT) / (output tokens - 1), only from
-- counted tokens; tokens_source says what output_tokens and tokens_per_s count: 'usage'
-- (the server's), 'estimated' (a tokenizer over the output) or 'chunks' (neither: content
-- chunks). client_lag_p99_ms is tokentop's own event-loop lag during the run (p99), and
-- client_bound (0 or 1) says it was past the bound, so the run's timing may be the
-- client's rather than the server's. Columns without a default leave every row written
-- before as it is, NULL: unknown (no row is rewritten).
ALTER TABLE runs ADD COLUMN tpot_ms REAL;
ALTER TABLE runs ADD COLUMN tokens_source TEXT;
ALTER TABLE runs ADD COLUMN client_lag_p99_ms REAL;
ALTER TABLE runs ADD COLUMN client_bound INTEGER;
"""
"""Version 7: time per output token, what the token count counts, and the client's own lag."""

V8 = """
-- Compare broadcasts: the compare screen's prompt box sends one prompt to several sessions
-- at once, each continuing its own conversation. The runs one send started share its
-- `broadcast_id` (tokentop's id), which links those conversations: they are the columns of
-- one compare and replay side by side (tui.store.broadcasts). NULL: a run sent on its own,
-- as every run written before is (a column without a default rewrites no row).
-- runs_by_broadcast holds only the linked runs, so it costs nothing for the others.
ALTER TABLE runs ADD COLUMN broadcast_id TEXT;
CREATE INDEX runs_by_broadcast ON runs(broadcast_id) WHERE broadcast_id IS NOT NULL;
"""
"""Version 8: the compare broadcast each run was sent in."""

MIGRATIONS: tuple[str, ...] = (V1, V2, V3, V4, V5, V6, V7, V8)
"""Upgrade scripts; ``MIGRATIONS[n - 1]`` produces version ``n``."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The version this tokentop writes."""


ROUNDS_SINCE = 5
"""The first version with the ``rounds`` tables: older databases have no rounds."""

CONVERSATIONS_SINCE = 6
"""The first version with ``runs.conversation_id`` and ``runs.turn``: in older databases every
run is a one-turn conversation of its own."""

TRUTHFUL_SINCE = 7
"""The first version with ``runs.tpot_ms``, ``tokens_source``, ``client_lag_p99_ms`` and
``client_bound``: older databases read them as NULL (unknown)."""

BROADCASTS_SINCE = 8
"""The first version with ``runs.broadcast_id``: in older databases no conversations are
linked (each replays alone)."""

READABLE_SINCE = 4
"""The oldest version a read-only store reads as it is (a writer upgrades every version):
the steps after it only add tables, which the queries read as empty when missing, and
columns, which they read as their older meaning (a run is a one-turn conversation)."""


def migration_script(target: int) -> str:
    """The whole transaction that upgrades a version ``target - 1`` database to ``target``."""
    return f"BEGIN IMMEDIATE;\n{MIGRATIONS[target - 1]}\nPRAGMA user_version = {target};\nCOMMIT;\n"
