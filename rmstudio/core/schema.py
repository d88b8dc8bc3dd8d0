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


MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = [
    ("0001_initial", _sql(M0001_INITIAL)),
    ("0002_feature_cache", _sql(M0002_FEATURE_CACHE)),
    ("0003_ranking_scale", _sql(M0003_RANKING_SCALE)),
]

SCHEMA_VERSION = len(MIGRATIONS)
