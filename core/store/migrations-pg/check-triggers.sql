-- Exercises every trigger (and the seed rows) of 20261213000000_initial.sql.
--
-- Run it on a fresh database with that migration applied, on one
-- connection (it uses temporary tables and functions), e.g.
--   psql -v ON_ERROR_STOP=1 -f check-triggers.sql
-- It writes rows: use a throwaway database, or wrap it in BEGIN/ROLLBACK.
--
-- Each block records its expectations as rows of pg_temp.expectations
-- (what, ok); the last statement raises an exception naming every one that
-- failed, so a caller only has to see whether the script errored. The two
-- "cannot move" triggers are checked by catching their exception.

CREATE TEMP TABLE expectations (n serial, what text NOT NULL, ok boolean);
-- Report stamps as they were at the last CALL pg_temp.snap().
CREATE TEMP TABLE snap (scope text PRIMARY KEY, stamp bigint);
CREATE PROCEDURE pg_temp.snap() LANGUAGE sql AS $$
    DELETE FROM pg_temp.snap;
    INSERT INTO pg_temp.snap SELECT scope, stamp FROM outbox_count_stamps;
$$;
-- How much a scope's stamp went up since the snapshot (NULL: no stamp row).
CREATE FUNCTION pg_temp.d(s text) RETURNS bigint LANGUAGE sql AS $$
    SELECT r.stamp - COALESCE((SELECT stamp FROM pg_temp.snap WHERE scope = s), 0)
    FROM outbox_count_stamps r WHERE r.scope = s
$$;
-- A rollout's totals as text, "members/acknowledged/sent/dead".
CREATE FUNCTION pg_temp.counts(r text) RETURNS text LANGUAGE sql AS $$
    SELECT members || '/' || acknowledged || '/' || sent || '/' || dead
    FROM outbox_count_totals WHERE rollout_id = r
$$;

-- ---------------------------------------------------------------------------
-- Seed rows: the evidence chain state row, a 32-byte evidence salt, and the
-- directory's report stamp at 0.
INSERT INTO expectations (what, ok) VALUES
    ('seed: evidence_chain_state (1, NULL, 0)',
     (SELECT count(*) FROM evidence_chain_state
      WHERE id = 1 AND backfilled_at IS NULL AND refusals_sealed_to = 0) = 1
     AND (SELECT count(*) FROM evidence_chain_state) = 1),
    ('seed: engine_secrets evidence-salt is 32 random bytes',
     (SELECT length(value) FROM engine_secrets WHERE name = 'evidence-salt') = 32
     AND (SELECT value FROM engine_secrets WHERE name = 'evidence-salt') <> decode(repeat('00', 32), 'hex')),
    ('seed: report_stamps directory row',
     (SELECT stamp FROM report_stamps WHERE scope = '') = 0
     AND (SELECT count(*) FROM report_stamps) = 1);

-- ---------------------------------------------------------------------------
-- The directory while no rollout exists: adds, changes and removals leave
-- the directory stamp alone (report_stamps_*_added/changed/removed test
-- EXISTS (SELECT 1 FROM rollouts)).
INSERT INTO agencies VALUES ('a1', 'Agency 1', 'council', 't'), ('a2', 'Agency 2', 'nhs', 't');
INSERT INTO teams VALUES ('t1', 'a1', 'Team 1', 't'), ('t2', 'a2', 'Team 2', 't');
INSERT INTO people (id, display_name, email, agency_id, team_id, updated_at) VALUES
    ('p1', 'P One', 'p1@x', 'a1', 't1', 't'), ('p2', 'P Two', 'p2@x', 'a1', 't1', 't'),
    ('p3', 'P Three', 'p3@x', 'a1', 't1', 't'), ('p4', 'P Four', 'p4@x', 'a2', 't2', 't');
INSERT INTO person_roles VALUES ('p1', 'social-worker');
INSERT INTO champions VALUES ('p4', 'neglect', 1, 't');
UPDATE people SET team_id = 't2' WHERE id = 'p2';
DELETE FROM person_roles WHERE person_id = 'p1';
INSERT INTO expectations (what, ok) VALUES
    ('directory without rollouts: stamp stays 0', (SELECT stamp FROM report_stamps WHERE scope = '') = 0);

-- ---------------------------------------------------------------------------
-- A rollout insert makes its rollout_counts row (all 0) and its report
-- stamp row (rollout_counts_rollout_added, report_stamps_rollout_added),
-- and rollouts_refreshers sets `refreshers` to the length of the
-- definition's `refreshers` array (0 when missing or not an array).
INSERT INTO items (id, version, kind, title, status, source, first_seen_at) VALUES
    ('i', '1', 'briefing', 'Item i v1', 'published', 'src', 't'),
    ('i', '2', 'briefing', 'Item i v2', 'published', 'src', 't'),
    ('j', '1', 'briefing', 'Item j v1', 'published', 'src', 't');
INSERT INTO expectations (what, ok) VALUES
    ('items without rollouts: no rollout stamp rows', (SELECT count(*) FROM report_stamps) = 1);
INSERT INTO rollouts (id, item_id, item_version, definition, state, created_at, updated_at) VALUES
    ('r1', 'i', '1', '{"refreshers": [7, 30]}', 'active', 1, 1),
    ('r2', 'i', '1', '{"waves": []}', 'active', 1, 1),
    ('r3', 'j', '1', '{"refreshers": 5}', 'active', 1, 1),
    ('r4', 'i', '2', '{"refreshers": [7]}', 'cancelled', 1, 1);
INSERT INTO expectations (what, ok) VALUES
    ('rollout added: rollout_counts rows at 0',
     (SELECT count(*) FROM rollout_counts WHERE members = 0 AND acknowledged = 0 AND sent = 0 AND dead = 0
      AND rollout_id IN ('r1', 'r2', 'r3', 'r4')) = 4),
    ('rollout added: report_stamps rows',
     (SELECT count(*) FROM report_stamps WHERE scope IN ('r1', 'r2', 'r3', 'r4')) = 4),
    ('rollouts_refreshers: array of 2 -> 2', (SELECT refreshers FROM rollouts WHERE id = 'r1') = 2),
    ('rollouts_refreshers: missing -> 0', (SELECT refreshers FROM rollouts WHERE id = 'r2') = 0),
    ('rollouts_refreshers: not an array -> 0', (SELECT refreshers FROM rollouts WHERE id = 'r3') = 0),
    ('rollouts_refreshers: array of 1 -> 1', (SELECT refreshers FROM rollouts WHERE id = 'r4') = 1);

-- report_stamps_rollout_added on an existing stamp row raises it (ON
-- CONFLICT DO UPDATE), and rollout_counts_rollout_added keeps an existing
-- totals row (ON CONFLICT DO NOTHING). The FK is deferred to put the
-- totals row in first.
INSERT INTO report_stamps (scope, stamp) VALUES ('r5', 5);
DO $$
BEGIN
    SET CONSTRAINTS ALL DEFERRED;
    INSERT INTO rollout_counts (rollout_id, members) VALUES ('r5', 9);
    INSERT INTO rollouts (id, item_id, item_version, definition, state, created_at, updated_at)
        VALUES ('r5', 'j', '1', '{}', 'active', 1, 1);
    SET CONSTRAINTS ALL IMMEDIATE;
END $$;
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_rollout_added: existing stamp raised', (SELECT stamp FROM report_stamps WHERE scope = 'r5') > 5),
    ('rollout_counts_rollout_added: existing totals kept', pg_temp.counts('r5') = '9/0/0/0');

-- report_stamps_rollout_changed: any update of the rollout; _removed.
CALL pg_temp.snap();
UPDATE rollouts SET state = 'paused' WHERE id = 'r1';
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_rollout_changed: +1', pg_temp.d('r1') = 1 AND pg_temp.d('r2') = 0);
DELETE FROM rollout_counts WHERE rollout_id = 'r5';
CALL pg_temp.snap();
DELETE FROM rollouts WHERE id = 'r5';
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_rollout_removed: +1', pg_temp.d('r5') = 1 AND pg_temp.d('r1') = 0);
UPDATE rollouts SET state = 'active' WHERE id = 'r1';

-- ---------------------------------------------------------------------------
-- The directory while a rollout exists: each add, change of a listed
-- column, and removal raises the directory stamp by 1; a change of another
-- column, or setting a listed column to its own value, does not.
CALL pg_temp.snap();
INSERT INTO agencies VALUES ('a3', 'Agency 3', 'police', 't');
INSERT INTO expectations (what, ok) VALUES ('report_stamps_agency_added: +1', pg_temp.d('') = 1);
CALL pg_temp.snap();
UPDATE agencies SET name = 'Agency Three' WHERE id = 'a3';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_agency_changed (name): +1', pg_temp.d('') = 1);
CALL pg_temp.snap();
UPDATE agencies SET kind = 'other', updated_at = 'u' WHERE id = 'a3';
UPDATE agencies SET name = name WHERE id = 'a3';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_agency_changed (kind; same name): +0', pg_temp.d('') = 0);

CALL pg_temp.snap();
INSERT INTO teams VALUES ('t3', 'a3', 'Team 3', 't');
INSERT INTO expectations (what, ok) VALUES ('report_stamps_team_added: +1', pg_temp.d('') = 1);
CALL pg_temp.snap();
UPDATE teams SET agency_id = 'a1' WHERE id = 't3';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_team_changed (agency_id): +1', pg_temp.d('') = 1);
CALL pg_temp.snap();
UPDATE teams SET updated_at = 'u' WHERE id = 't3';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_team_changed (updated_at): +0', pg_temp.d('') = 0);

CALL pg_temp.snap();
INSERT INTO people (id, display_name, email, agency_id, team_id, updated_at)
    VALUES ('p5', 'P Five', 'p5@x', 'a3', 't3', 't');
INSERT INTO expectations (what, ok) VALUES ('report_stamps_person_added: +1', pg_temp.d('') = 1);
CALL pg_temp.snap();
UPDATE people SET team_id = 't1' WHERE id = 'p5';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_person_changed (team_id): +1', pg_temp.d('') = 1);
CALL pg_temp.snap();
UPDATE people SET display_name = 'P 5', active = 0 WHERE id = 'p5';
UPDATE people SET agency_id = agency_id WHERE id = 'p5';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_person_changed (name; same agency): +0', pg_temp.d('') = 0);

CALL pg_temp.snap();
INSERT INTO person_roles VALUES ('p5', 'manager');
INSERT INTO expectations (what, ok) VALUES ('report_stamps_role_added: +1', pg_temp.d('') = 1);
CALL pg_temp.snap();
UPDATE person_roles SET role = 'lead' WHERE person_id = 'p5';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_role_changed: +1', pg_temp.d('') = 1);
CALL pg_temp.snap();
DELETE FROM person_roles WHERE person_id = 'p5';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_role_removed: +1', pg_temp.d('') = 1);

CALL pg_temp.snap();
INSERT INTO champions VALUES ('p5', 'neglect', 1, 't');
INSERT INTO expectations (what, ok) VALUES ('report_stamps_champion_added: +1', pg_temp.d('') = 1);
CALL pg_temp.snap();
UPDATE champions SET active = 0 WHERE person_id = 'p5';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_champion_changed (active): +1', pg_temp.d('') = 1);
CALL pg_temp.snap();
UPDATE champions SET updated_at = 'u' WHERE person_id = 'p5';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_champion_changed (updated_at): +0', pg_temp.d('') = 0);
CALL pg_temp.snap();
DELETE FROM champions WHERE person_id = 'p5';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_champion_removed: +1', pg_temp.d('') = 1);

CALL pg_temp.snap();
DELETE FROM people WHERE id = 'p5';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_person_removed: +1', pg_temp.d('') = 1);
CALL pg_temp.snap();
DELETE FROM teams WHERE id = 't3';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_team_removed: +1', pg_temp.d('') = 1);
CALL pg_temp.snap();
DELETE FROM agencies WHERE id = 'a3';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_agency_removed: +1', pg_temp.d('') = 1);

-- ---------------------------------------------------------------------------
-- Rollout members. Inserting members fires nothing (create_rollout adds
-- the count itself, as done here).
CALL pg_temp.snap();
INSERT INTO rollout_members (rollout_id, person_id, wave, next_due_at) VALUES
    ('r1', 'p1', 0, 100), ('r1', 'p2', 0, 100), ('r1', 'p3', 0, 100),
    ('r2', 'p1', 0, 100), ('r4', 'p1', 0, NULL);
INSERT INTO rollout_members (rollout_id, person_id, wave, refresher_next) VALUES ('r1', 'p4', 1, 3);
INSERT INTO expectations (what, ok) VALUES
    ('member insert: no trigger', pg_temp.counts('r1') = '0/0/0/0' AND pg_temp.d('r1') = 0);
UPDATE rollout_counts SET members = 4 WHERE rollout_id = 'r1';
UPDATE rollout_counts SET members = 1 WHERE rollout_id IN ('r2', 'r4');

-- rollout_counts_member_acknowledged: NULL -> time counts 1; time -> time
-- counts nothing; time -> NULL takes it back.
-- refreshers_after_acknowledgement: the first acknowledgement sets
-- refresher_due_at to acknowledged_at when the rollout (not cancelled) has
-- refreshers >= refresher_next and the member is not out.
CALL pg_temp.snap();
UPDATE rollout_members SET acknowledged_at = 1000 WHERE rollout_id = 'r1' AND person_id = 'p1';
INSERT INTO expectations (what, ok) VALUES
    ('rollout_counts_member_acknowledged: +1', pg_temp.counts('r1') = '4/1/0/0'),
    ('refreshers_after_acknowledgement: due at the acknowledgement',
     (SELECT refresher_due_at FROM rollout_members WHERE rollout_id = 'r1' AND person_id = 'p1') = 1000),
    ('acknowledged_at alone does not raise the report stamp', pg_temp.d('r1') = 0);
UPDATE rollout_members SET acknowledged_at = 2000 WHERE rollout_id = 'r1' AND person_id = 'p1';
INSERT INTO expectations (what, ok) VALUES
    ('rollout_counts_member_acknowledged: time -> time +0', pg_temp.counts('r1') = '4/1/0/0'),
    ('refreshers_after_acknowledgement: not again on a second time',
     (SELECT refresher_due_at FROM rollout_members WHERE rollout_id = 'r1' AND person_id = 'p1') = 1000);
UPDATE rollout_members SET acknowledged_at = NULL WHERE rollout_id = 'r1' AND person_id = 'p2';
UPDATE rollout_members SET acknowledged_at = 1500 WHERE rollout_id = 'r1' AND person_id = 'p2';
UPDATE rollout_members SET acknowledged_at = NULL WHERE rollout_id = 'r1' AND person_id = 'p2';
INSERT INTO expectations (what, ok) VALUES
    ('rollout_counts_member_acknowledged: time -> NULL -1', pg_temp.counts('r1') = '4/1/0/0');
-- (Taking an acknowledgement back leaves refresher_due_at, as in SQLite:
-- no trigger clears it. Cleared here for the checks below.)
UPDATE rollout_members SET refresher_due_at = NULL WHERE rollout_id = 'r1' AND person_id = 'p2';
-- No refresher: a rollout without refreshers (r2), a cancelled one (r4),
-- every refresher done (p4: refresher_next 3 > 2), a member who is out.
UPDATE rollout_members SET acknowledged_at = 1000 WHERE rollout_id IN ('r2', 'r4') AND person_id = 'p1';
UPDATE rollout_members SET acknowledged_at = 1000 WHERE rollout_id = 'r1' AND person_id = 'p4';
UPDATE rollout_members SET out_reason = 'left', out_at = 900 WHERE rollout_id = 'r1' AND person_id = 'p3';
UPDATE rollout_members SET acknowledged_at = 1000 WHERE rollout_id = 'r1' AND person_id = 'p3';
INSERT INTO expectations (what, ok) VALUES
    ('refreshers_after_acknowledgement: none without refreshers, cancelled, done or out',
     (SELECT count(*) FROM rollout_members WHERE refresher_due_at IS NOT NULL
      AND (rollout_id, person_id) IN (('r2', 'p1'), ('r4', 'p1'), ('r1', 'p4'), ('r1', 'p3'))) = 0),
    ('rollout_counts_member_acknowledged: r1 now 3 acknowledged', pg_temp.counts('r1') = '4/3/0/0'),
    ('rollout_counts_member_acknowledged: r2, r4', pg_temp.counts('r2') = '1/1/0/0' AND pg_temp.counts('r4') = '1/1/0/0');

-- refreshers_stop_when_out / refreshers_resume_when_back, and
-- report_stamps_member_changed on out_reason.
CALL pg_temp.snap();
UPDATE rollout_members SET out_reason = 'moved', out_at = 3000 WHERE rollout_id = 'r1' AND person_id = 'p1';
INSERT INTO expectations (what, ok) VALUES
    ('refreshers_stop_when_out: refresher_due_at cleared',
     (SELECT refresher_due_at FROM rollout_members WHERE rollout_id = 'r1' AND person_id = 'p1') IS NULL),
    ('report_stamps_member_changed (out_reason): +1', pg_temp.d('r1') = 1);
CALL pg_temp.snap();
UPDATE rollout_members SET out_reason = NULL, out_at = NULL WHERE rollout_id = 'r1' AND person_id = 'p1';
INSERT INTO expectations (what, ok) VALUES
    ('refreshers_resume_when_back: due again at the acknowledgement',
     (SELECT refresher_due_at FROM rollout_members WHERE rollout_id = 'r1' AND person_id = 'p1') = 2000),
    ('report_stamps_member_changed (out_reason back): +1', pg_temp.d('r1') = 1);
-- Back without an acknowledgement (p2), or with every refresher done (p4
-- out and back): no refresher.
UPDATE rollout_members SET out_reason = 'left' WHERE rollout_id = 'r1' AND person_id IN ('p2', 'p4');
UPDATE rollout_members SET out_reason = NULL WHERE rollout_id = 'r1' AND person_id IN ('p2', 'p4');
INSERT INTO expectations (what, ok) VALUES
    ('refreshers_resume_when_back: not unacknowledged nor done',
     (SELECT count(*) FROM rollout_members WHERE rollout_id = 'r1' AND person_id IN ('p2', 'p4')
      AND refresher_due_at IS NOT NULL) = 0);

-- report_stamps_member_changed: wave, joined_at, team_id raise it; another
-- column, or a listed column set to its own value, does not.
CALL pg_temp.snap();
UPDATE rollout_members SET wave = 1 WHERE rollout_id = 'r1' AND person_id = 'p2';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_member_changed (wave): +1', pg_temp.d('r1') = 1);
CALL pg_temp.snap();
UPDATE rollout_members SET joined_at = 5 WHERE rollout_id = 'r1' AND person_id = 'p2';
UPDATE rollout_members SET team_id = 't1' WHERE rollout_id = 'r1' AND person_id = 'p2';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_member_changed (joined_at, team_id): +2', pg_temp.d('r1') = 2);
CALL pg_temp.snap();
UPDATE rollout_members SET next_step = 1, next_due_at = 200, shift_days = 2 WHERE rollout_id = 'r1' AND person_id = 'p2';
UPDATE rollout_members SET wave = wave, agency_id = NULL WHERE rollout_id = 'r1' AND person_id = 'p3';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_member_changed (other columns; same values): +0', pg_temp.d('r1') = 0);

-- rollout_counts_member_moved: a member cannot move to another rollout;
-- setting rollout_id to its own value is allowed.
DO $$
BEGIN
    BEGIN
        UPDATE rollout_members SET rollout_id = 'r2' WHERE rollout_id = 'r1' AND person_id = 'p2';
        INSERT INTO pg_temp.expectations (what, ok) VALUES ('rollout_counts_member_moved: raises', false);
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO pg_temp.expectations (what, ok) VALUES ('rollout_counts_member_moved: raises',
            SQLERRM = 'a rollout member cannot move to another rollout');
    END;
END $$;
UPDATE rollout_members SET rollout_id = 'r1' WHERE rollout_id = 'r1' AND person_id = 'p2';
INSERT INTO expectations (what, ok) VALUES
    ('rollout_counts_member_moved: same rollout allowed',
     (SELECT count(*) FROM rollout_members WHERE rollout_id = 'r1') = 4);

-- rollout_members_rollouts_exist and rollouts_members_left_behind stand in
-- for the foreign key to rollouts: a statement naming a missing rollout
-- among present ones raises 23503 and writes nothing; a rollout with
-- members cannot be deleted or renamed; one without can.
DO $$
BEGIN
    BEGIN
        INSERT INTO rollout_members (rollout_id, person_id, wave)
        SELECT r, 'p9', 0 FROM unnest(ARRAY['r1', 'r2', 'nowhere', 'r4']) r;
        INSERT INTO pg_temp.expectations (what, ok) VALUES ('rollout_members_rollouts_exist: raises', false);
    EXCEPTION WHEN foreign_key_violation THEN
        INSERT INTO pg_temp.expectations (what, ok) VALUES ('rollout_members_rollouts_exist: raises',
            SQLERRM LIKE '%rollout_members_rollout_id_fkey%');
    END;
    -- Its totals row (a key of its own) goes first, so only members hold it.
    BEGIN
        DELETE FROM rollout_counts WHERE rollout_id = 'r2';
        DELETE FROM rollouts WHERE id = 'r2';
        INSERT INTO pg_temp.expectations (what, ok) VALUES ('rollouts_members_left_behind: delete raises', false);
    EXCEPTION WHEN foreign_key_violation THEN
        INSERT INTO pg_temp.expectations (what, ok) VALUES ('rollouts_members_left_behind: delete raises',
            SQLERRM LIKE '%rollout_members_rollout_id_fkey%');
    END;
    BEGIN
        DELETE FROM rollout_counts WHERE rollout_id = 'r2';
        UPDATE rollouts SET id = 'r2-renamed' WHERE id = 'r2';
        INSERT INTO pg_temp.expectations (what, ok) VALUES ('rollouts_members_left_behind: rename raises', false);
    EXCEPTION WHEN foreign_key_violation THEN
        INSERT INTO pg_temp.expectations (what, ok) VALUES ('rollouts_members_left_behind: rename raises',
            SQLERRM LIKE '%rollout_members_rollout_id_fkey%');
    END;
END $$;
INSERT INTO expectations (what, ok) VALUES
    ('rollout_members_rollouts_exist: nothing written',
     (SELECT count(*) FROM rollout_members WHERE person_id = 'p9') = 0),
    ('rollouts_members_left_behind: rollout and totals kept',
     (SELECT count(*) FROM rollouts WHERE id = 'r2') = 1 AND pg_temp.counts('r2') IS NOT NULL);
INSERT INTO rollouts (id, item_id, item_version, definition, state, created_at, updated_at)
    VALUES ('r-empty', 'i', '1', '{}', 'active', 1, 1);
DELETE FROM rollout_counts WHERE rollout_id = 'r-empty';
UPDATE rollouts SET id = 'r-empty-2' WHERE id = 'r-empty';
DELETE FROM rollouts WHERE id = 'r-empty-2';
INSERT INTO expectations (what, ok) VALUES
    ('rollouts without members: renamed and deleted',
     (SELECT count(*) FROM rollouts WHERE id LIKE 'r-empty%') = 0);

-- rollout_counts_member_removed / report_stamps_member_removed.
CALL pg_temp.snap();
DELETE FROM rollout_members WHERE rollout_id = 'r1' AND person_id = 'p2';
INSERT INTO expectations (what, ok) VALUES
    ('rollout_counts_member_removed (unacknowledged): members -1', pg_temp.counts('r1') = '3/3/0/0'),
    ('report_stamps_member_removed: +1', pg_temp.d('r1') = 1);
DELETE FROM rollout_members WHERE rollout_id = 'r1' AND person_id = 'p3';
INSERT INTO expectations (what, ok) VALUES
    ('rollout_counts_member_removed (acknowledged): members -1, acknowledged -1', pg_temp.counts('r1') = '2/2/0/0'),
    ('report_stamps_member_removed: +2 in all', pg_temp.d('r1') = 2);

-- ---------------------------------------------------------------------------
-- Outbox: sent/dead totals (rollout_counts_outbox_*) and the report stamp
-- for sent initial and escalation messages (report_stamps_send_*).
CALL pg_temp.snap();
INSERT INTO outbox (idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind, step_number,
                    channel, channel_rank, state, due_at, updated_at) VALUES
    ('k-due', 'r1', 'p1', 'p1', 0, 'initial', 1, 'email', 0, 'due', 100, 1);
INSERT INTO expectations (what, ok) VALUES
    ('outbox due row: nothing', pg_temp.counts('r1') = '2/2/0/0' AND pg_temp.d('r1') = 0);
INSERT INTO outbox (idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind, step_number,
                    channel, channel_rank, state, due_at, sent_at, updated_at) VALUES
    ('k-sent', 'r1', 'p1', 'p1', 0, 'initial', 1, 'sms', 1, 'sent', 100, 100, 1);
INSERT INTO expectations (what, ok) VALUES
    ('rollout_counts_outbox_added (sent): sent +1', pg_temp.counts('r1') = '2/2/1/0'),
    ('report_stamps_send_added (sent initial): +1', pg_temp.d('r1') = 1);
CALL pg_temp.snap();
INSERT INTO outbox (idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind, step_number,
                    channel, channel_rank, state, due_at, sent_at, updated_at) VALUES
    ('k-dead', 'r1', 'p1', 'p1', 0, 'escalation', 2, 'email', 0, 'dead', 100, NULL, 1),
    ('k-reminder', 'r1', 'p1', 'p1', 0, 'reminder', 3, 'email', 0, 'sent', 100, 100, 1);
INSERT INTO expectations (what, ok) VALUES
    ('rollout_counts_outbox_added (dead, sent reminder): dead +1, sent +1', pg_temp.counts('r1') = '2/2/2/1'),
    ('report_stamps_send_added (dead escalation, sent reminder): +0', pg_temp.d('r1') = 0);
CALL pg_temp.snap();
UPDATE outbox SET state = 'sent', sent_at = 200 WHERE idempotency_key = 'k-due';
INSERT INTO expectations (what, ok) VALUES
    ('rollout_counts_outbox_state (due -> sent): sent +1', pg_temp.counts('r1') = '2/2/3/1'),
    ('report_stamps_send_changed (-> sent initial): +1', pg_temp.d('r1') = 1);
CALL pg_temp.snap();
UPDATE outbox SET state = 'dead' WHERE idempotency_key = 'k-due';
INSERT INTO expectations (what, ok) VALUES
    ('rollout_counts_outbox_state (sent -> dead): sent -1, dead +1', pg_temp.counts('r1') = '2/2/2/2'),
    ('report_stamps_send_changed (sent initial ->): +1', pg_temp.d('r1') = 1);
CALL pg_temp.snap();
UPDATE outbox SET sent_at = 300 WHERE idempotency_key = 'k-sent';
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_send_changed (sent_at of a sent initial): +1', pg_temp.d('r1') = 1);
CALL pg_temp.snap();
UPDATE outbox SET attempts = 2, provider_id = 'x', state = state WHERE idempotency_key = 'k-sent';
UPDATE outbox SET sent_at = 400 WHERE idempotency_key = 'k-reminder';
UPDATE outbox SET state = 'cancelled' WHERE idempotency_key = 'k-dead';
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_send_changed (other columns, reminder, escalation not sent): +0', pg_temp.d('r1') = 0),
    ('rollout_counts_outbox_state (dead -> cancelled): dead -1', pg_temp.counts('r1') = '2/2/2/1');
CALL pg_temp.snap();
DELETE FROM outbox WHERE idempotency_key = 'k-sent';
INSERT INTO expectations (what, ok) VALUES
    ('rollout_counts_outbox_removed (sent): sent -1', pg_temp.counts('r1') = '2/2/1/1'),
    ('report_stamps_send_removed (sent initial): +1', pg_temp.d('r1') = 1);
CALL pg_temp.snap();
DELETE FROM outbox WHERE idempotency_key IN ('k-due', 'k-dead');
INSERT INTO expectations (what, ok) VALUES
    ('rollout_counts_outbox_removed (dead, cancelled): dead -1', pg_temp.counts('r1') = '2/2/1/0'),
    ('report_stamps_send_removed (not sent): +0', pg_temp.d('r1') = 0);
-- Several rows of two rollouts in one statement: since
-- 20261216000000_outbox_counts_per_statement the totals and stamps move
-- once a statement, by the sum of its rows, as the row triggers did.
CREATE TEMP TABLE counts_snap AS SELECT * FROM outbox_count_totals;
CREATE FUNCTION pg_temp.moved(r text) RETURNS text LANGUAGE sql AS $$
    SELECT (c.sent - s.sent) || '/' || (c.dead - s.dead)
    FROM outbox_count_totals c JOIN pg_temp.counts_snap s USING (rollout_id) WHERE c.rollout_id = r
$$;
CALL pg_temp.snap();
INSERT INTO outbox (idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind, step_number,
                    channel, channel_rank, state, due_at, sent_at, updated_at) VALUES
    ('k-m1', 'r1', 'p1', 'p1', 0, 'initial', 1, 'teams', 0, 'sent', 100, 100, 1),
    ('k-m2', 'r1', 'p1', 'p1', 0, 'escalation', 2, 'teams', 0, 'sent', 100, 100, 1),
    ('k-m3', 'r1', 'p1', 'p1', 0, 'reminder', 3, 'teams', 0, 'dead', 100, NULL, 1),
    ('k-m4', 'r2', 'p1', 'p1', 0, 'initial', 1, 'teams', 0, 'due', 100, NULL, 1),
    ('k-m5', 'r2', 'p1', 'p1', 0, 'reminder', 3, 'teams', 0, 'sent', 100, 100, 1),
    ('k-m6', 'r1', 'p2', 'p2', 0, 'initial', 1, 'teams', 0, 'sent', 100, 100, 1);
INSERT INTO expectations (what, ok) VALUES
    ('outbox_counts_inserted (six rows, two rollouts): r1 sent +3 dead +1, r2 sent +1',
     pg_temp.moved('r1') = '3/1' AND pg_temp.moved('r2') = '1/0'),
    ('outbox_counts_inserted (six rows, two rollouts): stamps r1 +3, r2 +0',
     pg_temp.d('r1') = 3 AND pg_temp.d('r2') = 0);
CALL pg_temp.snap();
UPDATE outbox SET state = CASE idempotency_key WHEN 'k-m1' THEN 'dead' WHEN 'k-m3' THEN 'cancelled'
                                               WHEN 'k-m4' THEN 'sent' ELSE state END,
                  sent_at = CASE idempotency_key WHEN 'k-m4' THEN 200 WHEN 'k-m2' THEN 300 ELSE sent_at END
WHERE idempotency_key LIKE 'k-m%';
INSERT INTO expectations (what, ok) VALUES
    ('outbox_counts_updated (six rows, two rollouts): r1 sent +2 dead +1, r2 sent +2',
     pg_temp.moved('r1') = '2/1' AND pg_temp.moved('r2') = '2/0'),
    ('outbox_counts_updated (six rows, two rollouts): stamps r1 +2 (one sent moved to dead, one resent), r2 +1',
     pg_temp.d('r1') = 2 AND pg_temp.d('r2') = 1);
CALL pg_temp.snap();
DELETE FROM outbox WHERE idempotency_key LIKE 'k-m%';
INSERT INTO expectations (what, ok) VALUES
    ('outbox_counts_deleted (six rows, two rollouts): back to before the inserts',
     pg_temp.moved('r1') = '0/0' AND pg_temp.moved('r2') = '0/0'),
    ('outbox_counts_deleted (six rows, two rollouts): stamps r1 +2, r2 +1',
     pg_temp.d('r1') = 2 AND pg_temp.d('r2') = 1);

-- rollout_counts_outbox_moved: an outbox row cannot move to another rollout.
DO $$
BEGIN
    BEGIN
        UPDATE outbox SET rollout_id = 'r2' WHERE idempotency_key = 'k-reminder';
        INSERT INTO pg_temp.expectations (what, ok) VALUES ('rollout_counts_outbox_moved: raises', false);
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO pg_temp.expectations (what, ok) VALUES ('rollout_counts_outbox_moved: raises',
            SQLERRM = 'an outbox row cannot move to another rollout');
    END;
END $$;

-- ---------------------------------------------------------------------------
-- Acknowledgements raise the stamps of the rollouts of their item version
-- (r1 and r2 pin i/1; r4 pins i/2; r3 is of j/1).
CALL pg_temp.snap();
INSERT INTO acknowledgements (person_id, item_id, item_version, channel, method, at)
    VALUES ('p1', 'i', '1', 'web', 'link', 1000);
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_ack_added: +1 for r1, r2 only',
     pg_temp.d('r1') = 1 AND pg_temp.d('r2') = 1 AND pg_temp.d('r3') = 0 AND pg_temp.d('r4') = 0);
CALL pg_temp.snap();
UPDATE acknowledgements SET item_version = '2' WHERE person_id = 'p1';
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_ack_changed (version 1 -> 2): +1 for old and new',
     pg_temp.d('r1') = 1 AND pg_temp.d('r2') = 1 AND pg_temp.d('r4') = 1 AND pg_temp.d('r3') = 0);
CALL pg_temp.snap();
UPDATE acknowledgements SET channel = 'sms', method = 'button' WHERE person_id = 'p1';
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_ack_changed (channel, method): +0', pg_temp.d('r4') = 0);
UPDATE acknowledgements SET item_version = '1' WHERE person_id = 'p1';
CALL pg_temp.snap();
DELETE FROM acknowledgements WHERE person_id = 'p1';
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_ack_removed: +1 for r1, r2', pg_temp.d('r1') = 1 AND pg_temp.d('r2') = 1 AND pg_temp.d('r4') = 0);

-- ---------------------------------------------------------------------------
-- Check answers count once their acknowledgement is set.
INSERT INTO acknowledgements (id, person_id, item_id, item_version, channel, method, at)
    VALUES (500, 'p1', 'i', '1', 'web', 'link', 1000);
CALL pg_temp.snap();
INSERT INTO check_answers (person_id, item_id, item_version, question, question_digest,
                           first_answer, right_first_time, attempts)
    VALUES ('p1', 'i', '1', 1, 'd1', 2, 0, 1), ('p2', 'i', '1', 1, 'd1', 1, 1, 1);
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_check_answer_added (no acknowledgement): +0', pg_temp.d('r1') = 0);
UPDATE check_answers SET attempts = 2 WHERE person_id = 'p1';
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_check_answer_changed (no acknowledgement): +0', pg_temp.d('r1') = 0);
UPDATE check_answers SET acknowledgement_id = 500 WHERE person_id = 'p1';
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_check_answer_changed (acknowledgement set): +1 for r1, r2',
     pg_temp.d('r1') = 1 AND pg_temp.d('r2') = 1 AND pg_temp.d('r3') = 0);
CALL pg_temp.snap();
INSERT INTO check_answers (person_id, item_id, item_version, question, question_digest,
                           first_answer, right_first_time, attempts, acknowledgement_id)
    VALUES ('p1', 'i', '1', 2, 'd2', 1, 1, 1, 500);
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_check_answer_added (with acknowledgement): +1', pg_temp.d('r1') = 1 AND pg_temp.d('r2') = 1);
CALL pg_temp.snap();
DELETE FROM check_answers WHERE person_id = 'p2';
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_check_answer_removed (no acknowledgement): +0', pg_temp.d('r1') = 0);
DELETE FROM check_answers WHERE person_id = 'p1' AND question = 2;
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_check_answer_removed (with acknowledgement): +1', pg_temp.d('r1') = 1 AND pg_temp.d('r2') = 1);

-- ---------------------------------------------------------------------------
-- Follow-up answers and refresher answers raise their rollout's stamp.
CALL pg_temp.snap();
INSERT INTO follow_up_answers (rollout_id, person_id, follow_up, answer, channel, at)
    VALUES ('r1', 'p1', 1, 'yes', 'web', 1);
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_answer_added: +1', pg_temp.d('r1') = 1 AND pg_temp.d('r2') = 0);
CALL pg_temp.snap();
UPDATE follow_up_answers SET reason = 'Need more training' WHERE rollout_id = 'r1';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_answer_changed: +1', pg_temp.d('r1') = 1);
CALL pg_temp.snap();
DELETE FROM follow_up_answers WHERE rollout_id = 'r1';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_answer_removed: +1', pg_temp.d('r1') = 1);

CALL pg_temp.snap();
INSERT INTO refresher_answers (rollout_id, person_id, refresher, delivery_id, item_id, item_version,
                               question, question_digest, first_answer, right_first_time, attempts,
                               channel, at)
    VALUES ('r1', 'p1', 1, 1, 'i', '1', 1, 'd1', 1, 1, 1, 'web', 1);
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_refresher_answer_added: +1', pg_temp.d('r1') = 1 AND pg_temp.d('r2') = 0);
CALL pg_temp.snap();
UPDATE refresher_answers SET attempts = 2 WHERE rollout_id = 'r1';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_refresher_answer_changed: +1', pg_temp.d('r1') = 1);
CALL pg_temp.snap();
DELETE FROM refresher_answers WHERE rollout_id = 'r1';
INSERT INTO expectations (what, ok) VALUES ('report_stamps_refresher_answer_removed: +1', pg_temp.d('r1') = 1);

-- ---------------------------------------------------------------------------
-- Champions' confirmations raise the stamps of the rollouts of any version
-- of their item (r1, r2 and r4 are of item i).
CALL pg_temp.snap();
INSERT INTO cascade_confirmations (champion_id, item_id, team_id, session_date, present, method, channel, at)
    VALUES ('p4', 'i', 't2', '2026-01-01', 5, 'team-meeting', 'web', 1);
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_confirmation_added: +1 for r1, r2, r4',
     pg_temp.d('r1') = 1 AND pg_temp.d('r2') = 1 AND pg_temp.d('r4') = 1 AND pg_temp.d('r3') = 0);
CALL pg_temp.snap();
UPDATE cascade_confirmations SET item_id = 'j' WHERE champion_id = 'p4';
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_confirmation_changed (item i -> j): +1 for both items',
     pg_temp.d('r1') = 1 AND pg_temp.d('r3') = 1 AND pg_temp.d('r4') = 1);
CALL pg_temp.snap();
DELETE FROM cascade_confirmations WHERE champion_id = 'p4';
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_confirmation_removed: +1 for r3 only', pg_temp.d('r3') = 1 AND pg_temp.d('r1') = 0);

-- ---------------------------------------------------------------------------
-- Items: the title of a rollout's item version.
CALL pg_temp.snap();
INSERT INTO items (id, version, kind, title, status, source, first_seen_at)
    VALUES ('j', '2', 'briefing', 'Item j v2', 'published', 'src', 't');
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_item_added (no rollout of j/2): +0', pg_temp.d('r3') = 0);
UPDATE items SET title = 'Item i v1 (renamed)' WHERE id = 'i' AND version = '1';
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_item_changed (title): +1 for r1, r2',
     pg_temp.d('r1') = 1 AND pg_temp.d('r2') = 1 AND pg_temp.d('r4') = 0);
CALL pg_temp.snap();
UPDATE items SET status = 'withdrawn' WHERE id = 'i' AND version = '1';
INSERT INTO expectations (what, ok) VALUES
    ('report_stamps_item_changed (status): +0', pg_temp.d('r1') = 0);
-- Removing and re-adding an item version a rollout pins (the foreign key
-- deferred to allow it).
CALL pg_temp.snap();
DO $$
BEGIN
    SET CONSTRAINTS ALL DEFERRED;
    DELETE FROM items WHERE id = 'j' AND version = '1';
    INSERT INTO pg_temp.expectations (what, ok) VALUES
        ('report_stamps_item_removed: +1 for r3', pg_temp.d('r3') = 1 AND pg_temp.d('r1') = 0);
    INSERT INTO items (id, version, kind, title, status, source, first_seen_at)
        VALUES ('j', '1', 'briefing', 'Item j v1', 'published', 'src', 't');
    INSERT INTO pg_temp.expectations (what, ok) VALUES
        ('report_stamps_item_added (r3 pins j/1): +1', pg_temp.d('r3') = 2);
    SET CONSTRAINTS ALL IMMEDIATE;
END $$;

-- ---------------------------------------------------------------------------
-- Deferrable foreign keys: with SET CONSTRAINTS ALL DEFERRED (SQLite's
-- PRAGMA defer_foreign_keys), a person's id can be renamed table by table,
-- as an erasure does.
INSERT INTO person_roles VALUES ('p4', 'manager');
INSERT INTO champion_teams VALUES ('p4', 'neglect', 't2');
INSERT INTO channel_identities (person_id, channel, address, linked_at) VALUES ('p4', 'email', 'p4@x', 't');
DO $$
BEGIN
    SET CONSTRAINTS ALL DEFERRED;
    UPDATE people SET id = 'anon-4' WHERE id = 'p4';
    UPDATE person_roles SET person_id = 'anon-4' WHERE person_id = 'p4';
    UPDATE champions SET person_id = 'anon-4' WHERE person_id = 'p4';
    UPDATE champion_teams SET person_id = 'anon-4' WHERE person_id = 'p4';
    UPDATE channel_identities SET person_id = 'anon-4' WHERE person_id = 'p4';
    SET CONSTRAINTS ALL IMMEDIATE;
    INSERT INTO pg_temp.expectations (what, ok) VALUES ('deferred foreign keys: person renamed', true);
EXCEPTION WHEN OTHERS THEN
    INSERT INTO pg_temp.expectations (what, ok) VALUES ('deferred foreign keys: person renamed: ' || SQLERRM, false);
END $$;

-- ---------------------------------------------------------------------------
-- 20261217000001_outbox_count_deltas: the outbox's triggers above added
-- rows of totals and stamps instead of updating rollout_counts and
-- report_stamps (which the pg_temp helpers read through the views); a fold
-- moves them there and every total and stamp reads the same.
CREATE TEMP TABLE totals_before_fold AS SELECT rollout_id, sent, dead FROM outbox_count_totals;
CREATE TEMP TABLE stamps_before_fold AS SELECT scope, stamp FROM outbox_count_stamps;
INSERT INTO expectations (what, ok) VALUES
    ('outbox_count_deltas: the outbox triggers added rows', (SELECT count(*) FROM outbox_count_deltas) > 0);
INSERT INTO expectations (what, ok) SELECT 'fold_outbox_count_deltas: folded rows', fold_outbox_count_deltas() > 0;
INSERT INTO expectations (what, ok) VALUES
    ('fold_outbox_count_deltas: none left', (SELECT count(*) FROM outbox_count_deltas) = 0),
    ('fold_outbox_count_deltas: totals read the same',
     NOT EXISTS (SELECT rollout_id, sent, dead FROM outbox_count_totals
                 EXCEPT SELECT rollout_id, sent, dead FROM totals_before_fold)
     AND NOT EXISTS (SELECT rollout_id, sent, dead FROM totals_before_fold
                     EXCEPT SELECT rollout_id, sent, dead FROM outbox_count_totals)),
    ('fold_outbox_count_deltas: stamps read the same',
     NOT EXISTS (SELECT scope, stamp FROM outbox_count_stamps
                 EXCEPT SELECT scope, stamp FROM stamps_before_fold)
     AND NOT EXISTS (SELECT scope, stamp FROM stamps_before_fold
                     EXCEPT SELECT scope, stamp FROM outbox_count_stamps)),
    ('fold_outbox_count_deltas: totals and stamps now in rollout_counts and report_stamps',
     NOT EXISTS (SELECT rollout_id, sent, dead FROM rollout_counts
                 EXCEPT SELECT rollout_id, sent, dead FROM totals_before_fold)
     AND NOT EXISTS (SELECT scope, stamp FROM report_stamps
                     EXCEPT SELECT scope, stamp FROM stamps_before_fold));
-- A rollout's totals row removed takes its unfolded rows with it, their
-- stamps folded first: the stamp never goes down.
INSERT INTO outbox (idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind, step_number,
                    channel, channel_rank, state, due_at, sent_at, updated_at) VALUES
    ('k-d1', 'r3', 'p1', 'p1', 0, 'initial', 1, 'teams', 0, 'sent', 100, 100, 1);
CALL pg_temp.snap();
DELETE FROM rollout_counts WHERE rollout_id = 'r3';
INSERT INTO expectations (what, ok) VALUES
    ('outbox_count_deltas_rollout_removed: its rows gone',
     (SELECT count(*) FROM outbox_count_deltas WHERE rollout_id = 'r3') = 0),
    ('outbox_count_deltas_rollout_removed: its stamp kept', pg_temp.d('r3') = 0);

-- ---------------------------------------------------------------------------
-- Every expectation above must hold, and all of them must have run.
DO $$
DECLARE
    failed text;
BEGIN
    SELECT string_agg(n || ': ' || what, E'\n' ORDER BY n) INTO failed
    FROM pg_temp.expectations WHERE ok IS NOT TRUE;
    IF failed IS NOT NULL THEN
        RAISE EXCEPTION E'trigger checks failed:\n%', failed;
    END IF;
    IF (SELECT count(*) FROM pg_temp.expectations) <> 120 THEN
        RAISE EXCEPTION 'trigger checks: expected 120 expectations, % ran',
            (SELECT count(*) FROM pg_temp.expectations);
    END IF;
END $$;
