-- Wake-ups for idle `cascade serve` processes sharing the database
-- (issue 18). A write that queues work, or makes work due sooner, notifies
-- the channel `cascade_due`; every serve listens on it (`PgStore`'s
-- `Wakeups::wait_for_work`) and looks at the store at once instead of
-- polling it. The payload names the table, for the log only.
--
-- Statement-level triggers with the statement's new rows as a transition
-- table: a statement that writes a million rows sends one notification,
-- one that writes none (an idle serve's empty claim) sends none, and
-- PostgreSQL delivers identical notifications of one transaction once.
-- A notification is a hint: a serve still looks at the store after its
-- longest idle wait, so work nobody announced (a lease that ran out, a
-- bulletin's occurrence) is found then.
--
-- PostgreSQL only: a SQLite store is served by one process, which wakes
-- itself (see core/store/src/sqlite/wakeups.rs).

-- Outbox rows queued or back to due (a retry, a deferral, a release, dead
-- letters queued again), or leased rows taken back from a serve that
-- stopped (`take_back_leases` ends their lease at the time of the update).
-- A claim leaves no row due and leases each until later, so it notifies
-- nothing.
CREATE FUNCTION outbox_due_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows
               WHERE state = 'due' OR (state = 'leased' AND lease_until <= updated_at)) THEN
        PERFORM pg_notify('cascade_due', 'outbox');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_due_inserted AFTER INSERT ON outbox
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_due_notify();
CREATE TRIGGER outbox_due_updated AFTER UPDATE ON outbox
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_due_notify();

-- Members with a step to come: a rollout started (or a bulletin's issue),
-- joiners enrolled by an import.
CREATE FUNCTION rollout_members_due_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows WHERE next_due_at IS NOT NULL) THEN
        PERFORM pg_notify('cascade_due', 'rollout_members');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER rollout_members_due_inserted AFTER INSERT ON rollout_members
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION rollout_members_due_notify();

-- Team posts planned with their rollout.
CREATE FUNCTION team_posts_due_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows) THEN
        PERFORM pg_notify('cascade_due', 'team_posts');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER team_posts_due_inserted AFTER INSERT ON team_posts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION team_posts_due_notify();

-- Acknowledgements a sent team post's count may show ("2 of 3
-- acknowledged"): of an item version a rollout with such a post sends.
CREATE FUNCTION acknowledgements_count_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows a
               JOIN rollouts r ON r.item_id = a.item_id AND r.item_version = a.item_version
               JOIN team_posts tp ON tp.rollout_id = r.id
               WHERE tp.state = 'sent' AND tp.shown_acknowledged < tp.shown_total) THEN
        PERFORM pg_notify('cascade_due', 'acknowledgements');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER acknowledgements_count_inserted AFTER INSERT ON acknowledgements
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION acknowledgements_count_notify();

-- A rollout resumed: its rows and members are claimable again. Rollouts
-- change one row at a time, so this one is per row, with a WHEN.
CREATE FUNCTION rollouts_resumed_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cascade_due', 'rollouts');
    RETURN NULL;
END $$;

CREATE TRIGGER rollouts_resumed AFTER UPDATE OF state ON rollouts
    FOR EACH ROW WHEN (NEW.state = 'active' AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION rollouts_resumed_notify();
