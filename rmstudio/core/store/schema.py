"""The project file's schema as an ordered list of named migrations.

Each migration runs in its own transaction and is recorded in ``schema_migrations``;
``PRAGMA user_version`` mirrors the count so a newer file is refused by an older app.
Never edit a migration that has shipped: append a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

M0001_INITIAL = """
CREATE TABLE annotators (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE CHECK (length(trim(name)) > 0),
    kind        TEXT NOT NULL DEFAULT 'human' CHECK (kind IN ('human', 'source', 'model')),
    created_at  TEXT NOT NULL
);

CREATE TABLE imports (
    id           INTEGER PRIMARY KEY,
    path         TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    imported_at  TEXT NOT NULL,
    summary      TEXT NOT NULL             -- JSON counts of what was added and skipped
);

CREATE TABLE prompts (
    id           INTEGER PRIMARY KEY,
    text         TEXT NOT NULL,
    messages     TEXT,                     -- JSON [{role, content}] when the source was a conversation
    content_hash TEXT NOT NULL UNIQUE,
    import_id    INTEGER REFERENCES imports(id) ON DELETE SET NULL,
    created_at   TEXT NOT NULL
);

CREATE TABLE responses (
    id           INTEGER PRIMARY KEY,
    prompt_id    INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
    text         TEXT NOT NULL,
    messages     TEXT,
    model        TEXT,                     -- what produced it: a model name, 'import:<file>', 'human:<annotator>'
    settings     TEXT,                     -- JSON generation settings (temperature, seed, ...)
    content_hash TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (prompt_id, content_hash)
);

CREATE TABLE comparisons (
    id            INTEGER PRIMARY KEY,
    prompt_id     INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
    response_a_id INTEGER NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
    response_b_id INTEGER NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
    pair_key      TEXT NOT NULL UNIQUE,    -- the unordered pair: A/B swapped is the same comparison
    queue_key     INTEGER NOT NULL,        -- random, fixed at insert: the "random" queue order
    label_count   INTEGER NOT NULL DEFAULT 0,  -- non-skip labels, kept by triggers for a fast queue
    import_id     INTEGER REFERENCES imports(id) ON DELETE SET NULL,
    created_at    TEXT NOT NULL,
    CHECK (response_a_id <> response_b_id)
);
CREATE INDEX idx_comparisons_queue_import ON comparisons (label_count, id);
CREATE INDEX idx_comparisons_queue_random ON comparisons (label_count, queue_key);
CREATE INDEX idx_comparisons_prompt ON comparisons (prompt_id);

CREATE TABLE labels (
    id            INTEGER PRIMARY KEY,
    comparison_id INTEGER NOT NULL REFERENCES comparisons(id) ON DELETE CASCADE,
    annotator_id  INTEGER NOT NULL REFERENCES annotators(id),
    choice        TEXT NOT NULL CHECK (choice IN ('a', 'b', 'tie', 'both_bad', 'skip')),
    strength      INTEGER CHECK (strength IS NULL OR strength IN (1, 2)),
    note          TEXT,
    created_at    TEXT NOT NULL,
    UNIQUE (comparison_id, annotator_id)
);
CREATE INDEX idx_labels_annotator ON labels (annotator_id, created_at);

-- Every change to a label, so undo can restore the previous state and nothing given is lost.
CREATE TABLE label_events (
    id            INTEGER PRIMARY KEY,
    comparison_id INTEGER NOT NULL REFERENCES comparisons(id) ON DELETE CASCADE,
    annotator_id  INTEGER NOT NULL REFERENCES annotators(id),
    before        TEXT,                    -- JSON of the label before, NULL if there was none
    after         TEXT,                    -- JSON of the label after, NULL if it was deleted
    undone        INTEGER NOT NULL DEFAULT 0,
    at            TEXT NOT NULL
);
CREATE INDEX idx_label_events_annotator ON label_events (annotator_id, id);

CREATE TRIGGER labels_count_insert AFTER INSERT ON labels WHEN NEW.choice <> 'skip'
BEGIN
    UPDATE comparisons SET label_count = label_count + 1 WHERE id = NEW.comparison_id;
END;
CREATE TRIGGER labels_count_delete AFTER DELETE ON labels WHEN OLD.choice <> 'skip'
BEGIN
    UPDATE comparisons SET label_count = label_count - 1 WHERE id = OLD.comparison_id;
END;
CREATE TRIGGER labels_count_update AFTER UPDATE OF choice ON labels
    WHEN (OLD.choice = 'skip') <> (NEW.choice = 'skip')
BEGIN
    UPDATE comparisons
    SET label_count = label_count + (CASE WHEN NEW.choice = 'skip' THEN -1 ELSE 1 END)
    WHERE id = NEW.comparison_id;
END;

-- Several responses ranked at once (imported rankings; the ranking view).
CREATE TABLE rankings (
    id           INTEGER PRIMARY KEY,
    prompt_id    INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
    annotator_id INTEGER NOT NULL REFERENCES annotators(id),
    created_at   TEXT NOT NULL,
    UNIQUE (prompt_id, annotator_id)
);
CREATE TABLE ranking_entries (
    ranking_id  INTEGER NOT NULL REFERENCES rankings(id) ON DELETE CASCADE,
    response_id INTEGER NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
    score       REAL NOT NULL,             -- higher is better
    PRIMARY KEY (ranking_id, response_id)
);

-- Training, generation and optimisation runs with their metrics and files.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,             -- 'reward', 'generate', 'policy', ...
    name        TEXT NOT NULL,
    config      TEXT NOT NULL,             -- JSON of the resolved config
    status      TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'finished', 'cancelled', 'failed')),
    error       TEXT,
    started_at  TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE run_metrics (
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step    INTEGER NOT NULL,
    key     TEXT NOT NULL,                 -- stable names such as 'train/loss', 'val/accuracy'
    value   REAL NOT NULL,
    PRIMARY KEY (run_id, key, step)
);
CREATE TABLE artifacts (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER REFERENCES runs(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,              -- 'checkpoint', 'model', 'export', ...
    path       TEXT NOT NULL,
    meta       TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL                    -- JSON
);
"""


def _sql(script: str) -> Callable[[sqlite3.Connection], None]:
    def run(conn: sqlite3.Connection) -> None:
        # executescript would COMMIT our transaction; run statement by statement instead.
        for statement in _split_statements(script):
            conn.execute(statement)

    return run


def _split_statements(script: str) -> list[str]:
    """Split a script on ';' at statement ends, keeping trigger bodies (BEGIN ... END;) whole."""
    statements, current = [], []
    for line in script.splitlines():
        current.append(line)
        candidate = "\n".join(current)
        if line.rstrip().endswith(";") and sqlite3.complete_statement(candidate):
            statements.append(candidate.strip())
            current = []
    rest = "\n".join(current).strip()
    if rest and not all(part.strip().startswith("--") for part in rest.splitlines() if part.strip()):
        statements.append(rest)
    return [s for s in statements if s]


M0002_FEATURE_CACHE = """
-- Frozen-backbone features of responses (the instant reward model): computed once, reused by
-- every retrain. `extractor` names the backbone and the feature recipe.
CREATE TABLE feature_cache (
    extractor   TEXT NOT NULL,
    response_id INTEGER NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
    vector      BLOB NOT NULL,             -- float16, little-endian
    PRIMARY KEY (extractor, response_id)
) WITHOUT ROWID;
"""


M0003_RANKING_SCALE = """
-- What a ranking's scores mean: 'order' (only their order: ranks, list order, a drag-and-drop
-- ranking) or 'rating' (absolute ratings or scores from the source, comparable across prompts,
-- which a reward model can regress on).
ALTER TABLE rankings ADD COLUMN scale TEXT NOT NULL DEFAULT 'order' CHECK (scale IN ('order', 'rating'));
"""


M0004_CHUNKED_IMPORTS = """
-- Imports commit in short chunks so labeling never waits on them. Until the last chunk is in,
-- an import is 'running': its comparisons stay out of the label queue, and if it fails, is
-- cancelled or its process dies, every row it added is found by import_id and removed again
-- (importer.recover_unfinished_imports). owner ('host pid') and heartbeat (unix seconds, per
-- chunk) tell a live import from a dead one.
ALTER TABLE imports ADD COLUMN status TEXT NOT NULL DEFAULT 'done' CHECK (status IN ('running', 'done'));
ALTER TABLE imports ADD COLUMN owner TEXT;
ALTER TABLE imports ADD COLUMN heartbeat REAL;
ALTER TABLE responses ADD COLUMN import_id INTEGER REFERENCES imports(id) ON DELETE SET NULL;
ALTER TABLE labels ADD COLUMN import_id INTEGER REFERENCES imports(id) ON DELETE SET NULL;
ALTER TABLE rankings ADD COLUMN import_id INTEGER REFERENCES imports(id) ON DELETE SET NULL;
ALTER TABLE annotators ADD COLUMN import_id INTEGER REFERENCES imports(id) ON DELETE SET NULL;
CREATE INDEX idx_prompts_import ON prompts (import_id) WHERE import_id IS NOT NULL;
CREATE INDEX idx_responses_import ON responses (import_id) WHERE import_id IS NOT NULL;
CREATE INDEX idx_comparisons_import ON comparisons (import_id) WHERE import_id IS NOT NULL;
CREATE INDEX idx_labels_import ON labels (import_id) WHERE import_id IS NOT NULL;
CREATE INDEX idx_rankings_import ON rankings (import_id) WHERE import_id IS NOT NULL;
-- Removing a response or comparison must not scan whole child tables (ON DELETE CASCADE
-- looks its children up by these columns).
CREATE INDEX idx_comparisons_response_a ON comparisons (response_a_id);
CREATE INDEX idx_comparisons_response_b ON comparisons (response_b_id);
CREATE INDEX idx_ranking_entries_response ON ranking_entries (response_id);
CREATE INDEX idx_feature_cache_response ON feature_cache (response_id);
CREATE INDEX idx_label_events_comparison ON label_events (comparison_id);
"""


M0005_RUNS = """
CREATE TABLE runs_new (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    config      TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'finished', 'cancelled', 'failed', 'interrupted')),
    error       TEXT,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    owner       TEXT                       -- JSON {host, pid, started} of the process running it
)
"""


def _run_owner(conn: sqlite3.Connection) -> None:
    """runs gets an owner (the process running it: runs.mark_interrupted_runs tells a dead run from
    a live one by it) and the status 'interrupted' (its process died without finishing it).

    SQLite cannot change a CHECK constraint in place, so runs is rebuilt. Foreign keys are on and
    cannot be switched off inside this transaction, so DROP TABLE runs would cascade-delete every
    metric and artifact: the tables referencing runs are moved aside first and recreated from their
    own stored SQL (with their indexes and triggers) afterwards."""
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                         "AND name NOT LIKE 'sqlite_%'")]

    def parents(table: str) -> set[str]:
        return {fk[2] for fk in conn.execute(f'PRAGMA foreign_key_list("{table}")')}

    children = [t for t in tables if "runs" in parents(t)]
    grandchildren = [t for t in tables if parents(t) & set(children)]
    if grandchildren:  # their rows would cascade away with the children's: refuse, loudly
        raise sqlite3.DatabaseError(f"0005_run_owner cannot rebuild runs: {grandchildren} "
                                    "reference its children")
    saved = {}
    for child in children:
        saved[child] = [r[0] for r in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL "
            "ORDER BY type <> 'table'", (child,))]  # the table first, then its indexes and triggers
        conn.execute(f'CREATE TEMP TABLE "stash_{child}" AS SELECT * FROM "{child}"')
        conn.execute(f'DROP TABLE "{child}"')
    conn.execute(M0005_RUNS)
    conn.execute("INSERT INTO runs_new (id, kind, name, config, status, error, started_at, finished_at) "
                 "SELECT id, kind, name, config, status, error, started_at, finished_at FROM runs")
    conn.execute("DROP TABLE runs")
    conn.execute("ALTER TABLE runs_new RENAME TO runs")
    for child, statements in saved.items():
        for statement in statements:
            conn.execute(statement)
        conn.execute(f'INSERT INTO "{child}" SELECT * FROM temp."stash_{child}"')
        conn.execute(f'DROP TABLE temp."stash_{child}"')


MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = [
    ("0001_initial", _sql(M0001_INITIAL)),
    ("0002_feature_cache", _sql(M0002_FEATURE_CACHE)),
    ("0003_ranking_scale", _sql(M0003_RANKING_SCALE)),
    ("0004_chunked_imports", _sql(M0004_CHUNKED_IMPORTS)),
    ("0005_run_owner", _run_owner),
]

SCHEMA_VERSION = len(MIGRATIONS)
