-- Learning items, every version kept, and the partnership directory.

CREATE TABLE items (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL,
    version         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    title           TEXT NOT NULL,
    status          TEXT NOT NULL,
    embargoed_until TEXT,
    source          TEXT NOT NULL,
    first_seen_at   TEXT NOT NULL,
    UNIQUE (id, version)
);

CREATE TABLE agencies (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE teams (
    id         TEXT PRIMARY KEY NOT NULL,
    agency_id  TEXT NOT NULL REFERENCES agencies (id),
    name       TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE people (
    id           TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL,
    email        TEXT NOT NULL,
    agency_id    TEXT NOT NULL REFERENCES agencies (id),
    team_id      TEXT NOT NULL REFERENCES teams (id),
    -- Deferred: a people file may list someone before their manager.
    manager_id   TEXT REFERENCES people (id) DEFERRABLE INITIALLY DEFERRED,
    time_zone    TEXT,
    active       INTEGER NOT NULL DEFAULT 1,
    updated_at   TEXT NOT NULL
);

CREATE TABLE person_roles (
    person_id TEXT NOT NULL REFERENCES people (id),
    role      TEXT NOT NULL,
    PRIMARY KEY (person_id, role)
);

CREATE TABLE champions (
    person_id  TEXT NOT NULL REFERENCES people (id),
    theme      TEXT NOT NULL,
    active     INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (person_id, theme)
);

CREATE TABLE champion_teams (
    person_id TEXT NOT NULL,
    theme     TEXT NOT NULL,
    team_id   TEXT NOT NULL REFERENCES teams (id),
    PRIMARY KEY (person_id, theme, team_id),
    FOREIGN KEY (person_id, theme) REFERENCES champions (person_id, theme)
);

CREATE TABLE channel_identities (
    person_id TEXT NOT NULL REFERENCES people (id),
    channel   TEXT NOT NULL,
    address   TEXT NOT NULL,
    linked_at TEXT NOT NULL,
    UNIQUE (channel, address)
);

CREATE INDEX channel_identities_person ON channel_identities (person_id);
CREATE INDEX people_team ON people (team_id);
