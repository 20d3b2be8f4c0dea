#!/usr/bin/env python3
"""Compare the SQLite store's final schema with the PostgreSQL one.

    compare-schema.py SQLITE_DB [psql connection args...]

SQLITE_DB: a database with every migration of ../migrations applied, e.g.
    for f in core/store/migrations/*.sql; do sqlite3 /tmp/final.db < $f; done
psql arguments: where the PostgreSQL schema (this directory's migrations)
is applied, e.g. -h 127.0.0.1 -p 55439 -U cascade -d cascade_schema.

Compares tables and columns (type after the README's mapping, NOT NULL,
default), named indexes, primary key and unique constraints, foreign keys
(with ON DELETE), the number of CHECK constraints per table, and triggers
(table, timing, event, UPDATE OF columns, whether a WHEN is kept). Prints
the differences; the expected ones (the explicit `rowid` columns, WHEN
conditions with a subquery moved into the trigger function, the wake-up
triggers that exist in PostgreSQL only, the outbox's totals and stamps
kept per statement in PostgreSQL and per row in SQLite, PostgreSQL's own
tables of sends waiting to be linked into the evidence chain and of totals
waiting to be folded, the key from rollout members to their rollout kept
by statement triggers) are listed as such. Views are not compared. Exits 1 if any
other difference is found.
"""
import re
import sqlite3
import subprocess
import sys

EXPECTED_EXTRA_PG_COLUMNS = {
    ("people", "rowid"), ("channel_identities", "rowid"),
    ("channel_states", "rowid"), ("plugin_state", "rowid"),
    # Migration 20261217000000_chain_pending: sends waiting to be linked
    # into the evidence chain, PostgreSQL only (SQLite links each send in
    # the transaction that records it).
    ("chain_pending", "id"), ("chain_pending", "outbox_id"),
    # Migration 20261217000001_outbox_count_deltas: the outbox's totals and
    # report stamps added as rows and folded later, PostgreSQL only (its
    # views, outbox_count_*, are not compared: only tables are).
    ("outbox_count_deltas", "rollout_id"), ("outbox_count_deltas", "sent"),
    ("outbox_count_deltas", "dead"), ("outbox_count_deltas", "stamp"),
}
EXPECTED_PG_ONLY_INDEXES = {("outbox_count_deltas", "outbox_count_deltas_rollout")}
# Migration 20261215000001_work_notify: NOTIFY an idle serve, PostgreSQL
# only (SQLite has no other process to wake); statement-level but for
# rollouts_resumed.
EXPECTED_PG_ONLY_TRIGGERS = {
    ("outbox", "outbox_due_inserted", "AFTER", "INSERT", ""),
    ("outbox", "outbox_due_updated", "AFTER", "UPDATE", ""),
    ("rollout_members", "rollout_members_due_inserted", "AFTER", "INSERT", ""),
    ("team_posts", "team_posts_due_inserted", "AFTER", "INSERT", ""),
    ("acknowledgements", "acknowledgements_count_inserted", "AFTER", "INSERT", ""),
    ("rollouts", "rollouts_resumed", "AFTER", "UPDATE", "state"),
    # Migration 20261216000000_outbox_counts_per_statement: the outbox's
    # totals and report stamps per statement, in place of the six row
    # triggers below.
    ("outbox", "outbox_counts_inserted", "AFTER", "INSERT", ""),
    ("outbox", "outbox_counts_updated", "AFTER", "UPDATE", ""),
    ("outbox", "outbox_counts_deleted", "AFTER", "DELETE", ""),
    # Migration 20261217000001_outbox_count_deltas.
    ("rollout_counts", "outbox_count_deltas_rollout_removed", "AFTER", "DELETE", ""),
    # Migration 20261218000000_rollout_members_key_per_statement: the key
    # from rollout_members to rollouts, checked per statement.
    ("rollout_members", "rollout_members_rollouts_exist", "AFTER", "INSERT", ""),
    ("rollouts", "rollouts_members_left_behind_deleted", "AFTER", "DELETE", ""),
    ("rollouts", "rollouts_members_left_behind_renamed", "AFTER", "UPDATE", "id"),
}
# ... in place of this foreign key, which SQLite keeps.
EXPECTED_SQLITE_ONLY_FOREIGN_KEYS = {
    ("rollout_members", "rollout_id", "rollouts", "id", "NO ACTION"),
}
# SQLite's row triggers that those three statement triggers replace.
EXPECTED_SQLITE_ONLY_TRIGGERS = {
    ("outbox", "rollout_counts_outbox_added", "AFTER", "INSERT", ""),
    ("outbox", "rollout_counts_outbox_state", "AFTER", "UPDATE", "state"),
    ("outbox", "rollout_counts_outbox_removed", "AFTER", "DELETE", ""),
    ("outbox", "report_stamps_send_added", "AFTER", "INSERT", ""),
    ("outbox", "report_stamps_send_changed", "AFTER", "UPDATE",
     "rollout_id,person_id,step_kind,state,sent_at"),
    ("outbox", "report_stamps_send_removed", "AFTER", "DELETE", ""),
}
TYPES = {"INTEGER": "BIGINT", "TEXT": "TEXT", "BLOB": "BYTEA", "REAL": "DOUBLE PRECISION"}


def pg(args, sql):
    out = subprocess.run(["psql", "-X", "-At", "-F", "\t", *args, "-c", sql],
                         capture_output=True, text=True, check=True).stdout
    return [tuple(line.split("\t")) for line in out.splitlines() if line]


def main():
    lite = sqlite3.connect(sys.argv[1])
    args = sys.argv[2:]
    problems = 0

    def report(title, a, b, expected=frozenset(), expected_a=frozenset()):
        nonlocal problems
        only_a, only_b = sorted(a - b), sorted(b - a)
        print(f"== {title}: {len(a)} in SQLite, {len(b)} in PostgreSQL")
        for x in only_a:
            if x in expected_a:
                print("  only in SQLite (expected):", x)
            else:
                print("  only in SQLite:", x)
                problems += 1
        for x in only_b:
            if x in expected:
                print("  only in PostgreSQL (expected):", x)
            else:
                print("  only in PostgreSQL:", x)
                problems += 1

    tables = [r[0] for r in lite.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]

    # Columns.
    a = set()
    for t in tables:
        for _, name, typ, notnull, dflt, pk in lite.execute(f"PRAGMA table_info('{t}')"):
            a.add((t, name, TYPES[typ.upper()], bool(notnull or pk), dflt or ""))
    b = set()
    for t, c, typ, nullable, dflt, ident in pg(args, """
            SELECT table_name, column_name, upper(data_type), is_nullable,
                   coalesce(regexp_replace(column_default, '::text$', ''), ''), is_identity
            FROM information_schema.columns c WHERE table_schema = 'public'
            AND EXISTS (SELECT 1 FROM information_schema.tables t
                        WHERE t.table_schema = c.table_schema AND t.table_name = c.table_name
                          AND t.table_type = 'BASE TABLE')"""):
        b.add((t, c, typ, nullable == "NO", dflt))
    expected = {x for x in b if (x[0], x[1]) in EXPECTED_EXTRA_PG_COLUMNS}
    report("columns (table, column, type, not null, default)", a, b, expected)

    # Named indexes (the autoindexes of PRIMARY KEY/UNIQUE are compared as
    # constraints below).
    a = {r for r in lite.execute(
        "SELECT tbl_name, name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
    b = set(pg(args, """
        SELECT tablename, indexname FROM pg_indexes i WHERE schemaname = 'public'
        AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"""))
    report("named indexes", a, b, EXPECTED_PG_ONLY_INDEXES)

    # Primary keys and unique constraints, by columns.
    a = set()
    for t in tables:
        for _, iname, unique, origin, partial in lite.execute(f"PRAGMA index_list('{t}')"):
            if origin in ("pk", "u"):
                cols = [r[2] for r in lite.execute(f"PRAGMA index_info('{iname}')")]
                a.add((t, ",".join(cols)))
        pks = [r for r in lite.execute(f"PRAGMA table_info('{t}')") if r[5]]
        if len(pks) == 1 and pks[0][2].upper() == "INTEGER":
            a.add((t, pks[0][1]))  # rowid alias: no autoindex
    b = set(pg(args, """
        SELECT conrelid::regclass::text,
               (SELECT string_agg(a.attname, ',' ORDER BY k.o)
                FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n)
        FROM pg_constraint c
        WHERE contype IN ('p', 'u') AND connamespace = 'public'::regnamespace"""))
    expected = {(t, c) for t, c in EXPECTED_EXTRA_PG_COLUMNS}
    report("primary key and unique constraints (table, columns)", a, b, expected)

    # Foreign keys.
    a = set()
    for t in tables:
        fks = {}
        for fid, seq, target, frm, to, on_update, on_delete, match in lite.execute(
                f"PRAGMA foreign_key_list('{t}')"):
            fks.setdefault(fid, [target, [], [], on_delete])
            fks[fid][1].append(frm)
            fks[fid][2].append(to)
        for target, frm, to, on_delete in fks.values():
            a.add((t, ",".join(frm), target, ",".join(to), on_delete))
    b = set(pg(args, """
        SELECT conrelid::regclass::text,
               (SELECT string_agg(a.attname, ',' ORDER BY k.o)
                FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n),
               confrelid::regclass::text,
               (SELECT string_agg(a.attname, ',' ORDER BY k.o)
                FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
                JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n),
               CASE confdeltype WHEN 'a' THEN 'NO ACTION' WHEN 'c' THEN 'CASCADE'
                    WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' ELSE 'RESTRICT' END
        FROM pg_constraint c WHERE contype = 'f' AND connamespace = 'public'::regnamespace"""))
    report("foreign keys (table, columns, target, columns, on delete)", a, b,
           expected_a=EXPECTED_SQLITE_ONLY_FOREIGN_KEYS)

    # CHECK constraints, counted per table.
    a = set()
    for t, sql in lite.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"):
        n = sql.count("CHECK (")
        if n:
            a.add((t, str(n)))
    b = set(pg(args, """
        SELECT conrelid::regclass::text, count(*)::text FROM pg_constraint
        WHERE contype = 'c' AND connamespace = 'public'::regnamespace GROUP BY conrelid"""))
    report("CHECK constraints per table", a, b)

    # Triggers.
    a, when_moved = set(), set()
    for name, tbl, sql in lite.execute(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"):
        s = " ".join(sql.split())
        m = re.search(r"(BEFORE|AFTER) (INSERT|UPDATE|DELETE)(?: OF ([\w, ]+?))? ON (\w+)", s)
        cols = ",".join(c.strip() for c in m.group(3).split(",")) if m.group(3) else ""
        when = s.split(" BEGIN ")[0]
        when = when.split(" WHEN ", 1)[1] if " WHEN " in when else ""
        a.add((tbl, name, m.group(1), m.group(2), cols))
        # A condition that is only a subquery cannot be a WHEN in PostgreSQL.
        if when and re.fullmatch(r"EXISTS \(SELECT 1 FROM \w+\)", when.strip()):
            when_moved.add(name)
    rows = pg(args, """
        SELECT c.relname, t.tgname,
               CASE WHEN t.tgtype & 2 = 2 THEN 'BEFORE' ELSE 'AFTER' END,
               CASE WHEN t.tgtype & 4 = 4 THEN 'INSERT' WHEN t.tgtype & 8 = 8 THEN 'DELETE'
                    ELSE 'UPDATE' END,
               coalesce((SELECT string_agg(a.attname, ',' ORDER BY k.o)
                         FROM unnest(t.tgattr::int2[]) WITH ORDINALITY k(n, o)
                         JOIN pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = k.n), ''),
               (t.tgqual IS NOT NULL)::text, (t.tgtype & 1 = 1)::text
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal""")
    b = {r[:5] for r in rows}
    report("triggers (table, name, timing, event, UPDATE OF columns)", a, b,
           EXPECTED_PG_ONLY_TRIGGERS, EXPECTED_SQLITE_ONLY_TRIGGERS)
    for tbl, name, _, _, _, has_when, per_row in rows:
        if any(name == t[1] for t in EXPECTED_PG_ONLY_TRIGGERS):
            continue
        if per_row != "true":
            print("  not FOR EACH ROW:", name)
            problems += 1
        sql = lite.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()
        lite_has_when = sql is not None and " WHEN " in " ".join(sql[0].split()).split(" BEGIN ")[0]
        if lite_has_when and has_when != "true" and name not in when_moved:
            print("  WHEN lost:", name)
            problems += 1
        if not lite_has_when and has_when == "true":
            print("  WHEN added:", name)
            problems += 1
    print(f"  WHEN that is only a subquery, tested in the function instead: {len(when_moved)} triggers")

    print("OK: no unexpected differences" if problems == 0 else f"{problems} unexpected differences")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
