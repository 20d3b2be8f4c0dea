-- rollout_members.rollout_id is checked against rollouts once per
-- statement instead of once per row (issue 18). PostgreSQL only: SQLite
-- keeps its foreign key, whose per-row check costs little there.
--
-- Planning a rollout writes its whole audience with one INSERT ... SELECT,
-- every row naming the same rollout. The foreign key looked that rollout
-- up again for each row: for 1,000,000 members 3.3 s of the statement's
-- 7.2 s (auto_explain's trigger timings on the pg_plan bench's server,
-- BENCHMARKS.md "Planning a million members under 10 s"). These triggers
-- keep the key's promise set-wise, with the same locks and error:
--
-- * After an INSERT into rollout_members, the distinct rollouts its rows
--   name are share-locked as the key did (FOR KEY SHARE: none can be
--   deleted or have its id changed until this transaction ends) and any
--   that is not there raises foreign_key_violation (23503) naming it.
--   A member's rollout never changes (rollout_counts_member_moved raises
--   first), so an UPDATE needs no check.
-- * Deleting a rollout, or changing its id, while members name it raises
--   the same error (the key was NO ACTION).
--
-- Concurrency is the key's: a delete that commits before the insert's lock
-- leaves the insert finding its rollout gone; an insert that locks first
-- makes the delete wait, and the delete's check (a new snapshot under READ
-- COMMITTED) then sees the committed members. Unlike the key, the check
-- cannot be deferred (SET CONSTRAINTS does not reach triggers): every
-- writer inserts the rollout before its members. `cascade store copy`
-- turns user triggers off while it loads, so it looks for members without
-- their rollout itself before it commits (core/store/src/copy.rs).

ALTER TABLE rollout_members DROP CONSTRAINT rollout_members_rollout_id_fkey;

CREATE FUNCTION rollout_members_rollouts_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    named TEXT[];
    missing TEXT;
BEGIN
    SELECT array_agg(rollout_id) INTO named
    FROM (SELECT DISTINCT rollout_id FROM added) d;
    PERFORM 1 FROM rollouts WHERE id = ANY (named) FOR KEY SHARE;
    SELECT n INTO missing
    FROM unnest(named) n
    WHERE NOT EXISTS (SELECT 1 FROM rollouts r WHERE r.id = n)
    LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "rollout_members" violates foreign key constraint "rollout_members_rollout_id_fkey"'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (rollout_id)=(%s) is not present in table "rollouts".', missing),
                  TABLE = 'rollout_members',
                  CONSTRAINT = 'rollout_members_rollout_id_fkey';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER rollout_members_rollouts_exist AFTER INSERT ON rollout_members
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION rollout_members_rollouts_exist();

CREATE FUNCTION rollouts_members_left_behind() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM rollout_members WHERE rollout_id = OLD.id) THEN
        RAISE EXCEPTION 'update or delete on table "rollouts" violates foreign key constraint "rollout_members_rollout_id_fkey" on table "rollout_members"'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (id)=(%s) is still referenced from table "rollout_members".', OLD.id),
                  TABLE = 'rollouts',
                  CONSTRAINT = 'rollout_members_rollout_id_fkey';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER rollouts_members_left_behind_deleted AFTER DELETE ON rollouts
    FOR EACH ROW EXECUTE FUNCTION rollouts_members_left_behind();
CREATE TRIGGER rollouts_members_left_behind_renamed AFTER UPDATE OF id ON rollouts
    FOR EACH ROW
    WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION rollouts_members_left_behind();
