-- A stamp for each rollout's report figures, and one for the directory,
-- so the console can keep a computed report and know, by one small read,
-- whether any row it was computed from has changed since (issue 16: a
-- report of every rollout took 20 s to compute from 1.3 million rows).
--
-- A stamp only ever goes up. The triggers below raise it in the same
-- transaction as every write to a row `report_rollout` or
-- `report_directory` reads:
--
--   scope = a rollout id: the rollout itself, its members, its sent
--     initial and escalation messages, its follow-up answers, the
--     acknowledgements and champions' confirmations of its item, and the
--     title of its item version;
--   scope = '' (the directory): agencies, teams, people, roles and
--     champions. Only while some rollout exists: without one no report
--     shows anything from the directory, and a first import of a large
--     people file pays nothing.
--
-- Members are inserted only by `create_rollout`, into the rollout it has
-- just inserted in the same transaction (whose stamp row that insert
-- makes), so inserting a member needs no trigger (a trigger per member row
-- made starting a 1,000,000-member rollout about 70% slower; see
-- 20261001000000_rollout_counts).

CREATE TABLE report_stamps (
    scope  TEXT PRIMARY KEY NOT NULL,
    stamp  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

INSERT INTO report_stamps (scope) VALUES ('');
INSERT INTO report_stamps (scope) SELECT id FROM rollouts;

-- The acknowledgement, confirmation and item triggers find the rollouts of
-- an item by this index rather than reading every rollout.
CREATE INDEX rollouts_item ON rollouts (item_id, item_version);

-- Rollouts.
CREATE TRIGGER report_stamps_rollout_added AFTER INSERT ON rollouts
BEGIN
    INSERT INTO report_stamps (scope) VALUES (NEW.id)
    ON CONFLICT (scope) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER report_stamps_rollout_changed AFTER UPDATE ON rollouts
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope IN (OLD.id, NEW.id);
END;

CREATE TRIGGER report_stamps_rollout_removed AFTER DELETE ON rollouts
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = OLD.id;
END;

-- Members: their person and wave (acknowledgements are read from their
-- own table).
-- Leavers and movers (20261103000000): where a member was reached and
-- whether they left or moved out are counted in reports too.
CREATE TRIGGER report_stamps_member_changed AFTER UPDATE OF rollout_id, person_id, wave, team_id, agency_id, out_reason ON rollout_members
WHEN OLD.rollout_id IS NOT NEW.rollout_id OR OLD.person_id IS NOT NEW.person_id OR OLD.wave IS NOT NEW.wave
  OR OLD.team_id IS NOT NEW.team_id OR OLD.agency_id IS NOT NEW.agency_id OR OLD.out_reason IS NOT NEW.out_reason
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope IN (OLD.rollout_id, NEW.rollout_id);
END;

CREATE TRIGGER report_stamps_member_removed AFTER DELETE ON rollout_members
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = OLD.rollout_id;
END;

-- Sent initial and escalation messages (the only outbox rows reports read).
CREATE TRIGGER report_stamps_send_added AFTER INSERT ON outbox
WHEN NEW.state = 'sent' AND NEW.step_kind IN ('initial', 'escalation')
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = NEW.rollout_id;
END;

CREATE TRIGGER report_stamps_send_changed
AFTER UPDATE OF rollout_id, person_id, step_kind, state, sent_at ON outbox
WHEN (OLD.state = 'sent' AND OLD.step_kind IN ('initial', 'escalation')
      OR NEW.state = 'sent' AND NEW.step_kind IN ('initial', 'escalation'))
 AND (OLD.rollout_id IS NOT NEW.rollout_id OR OLD.person_id IS NOT NEW.person_id
      OR OLD.step_kind IS NOT NEW.step_kind OR OLD.state IS NOT NEW.state
      OR OLD.sent_at IS NOT NEW.sent_at)
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope IN (OLD.rollout_id, NEW.rollout_id);
END;

CREATE TRIGGER report_stamps_send_removed AFTER DELETE ON outbox
WHEN OLD.state = 'sent' AND OLD.step_kind IN ('initial', 'escalation')
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = OLD.rollout_id;
END;

-- Acknowledgements, of the item version a rollout pinned.
CREATE TRIGGER report_stamps_ack_added AFTER INSERT ON acknowledgements
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope IN
        (SELECT id FROM rollouts WHERE item_id = NEW.item_id AND item_version = NEW.item_version);
END;

CREATE TRIGGER report_stamps_ack_changed AFTER UPDATE OF person_id, item_id, item_version, at ON acknowledgements
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope IN
        (SELECT id FROM rollouts
         WHERE item_id = OLD.item_id AND item_version = OLD.item_version
            OR item_id = NEW.item_id AND item_version = NEW.item_version);
END;

CREATE TRIGGER report_stamps_ack_removed AFTER DELETE ON acknowledgements
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope IN
        (SELECT id FROM rollouts WHERE item_id = OLD.item_id AND item_version = OLD.item_version);
END;

-- Follow-up answers.
CREATE TRIGGER report_stamps_answer_added AFTER INSERT ON follow_up_answers
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = NEW.rollout_id;
END;

CREATE TRIGGER report_stamps_answer_changed AFTER UPDATE ON follow_up_answers
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope IN (OLD.rollout_id, NEW.rollout_id);
END;

CREATE TRIGGER report_stamps_answer_removed AFTER DELETE ON follow_up_answers
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = OLD.rollout_id;
END;

-- Champions' confirmations, of any version of a rollout's item.
CREATE TRIGGER report_stamps_confirmation_added AFTER INSERT ON cascade_confirmations
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope IN
        (SELECT id FROM rollouts WHERE item_id = NEW.item_id);
END;

CREATE TRIGGER report_stamps_confirmation_changed AFTER UPDATE ON cascade_confirmations
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope IN
        (SELECT id FROM rollouts WHERE item_id IN (OLD.item_id, NEW.item_id));
END;

CREATE TRIGGER report_stamps_confirmation_removed AFTER DELETE ON cascade_confirmations
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope IN
        (SELECT id FROM rollouts WHERE item_id = OLD.item_id);
END;

-- The title of a rollout's item version.
CREATE TRIGGER report_stamps_item_added AFTER INSERT ON items
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope IN
        (SELECT id FROM rollouts WHERE item_id = NEW.id AND item_version = NEW.version);
END;

CREATE TRIGGER report_stamps_item_changed AFTER UPDATE OF id, version, title ON items
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope IN
        (SELECT id FROM rollouts
         WHERE item_id = OLD.id AND item_version = OLD.version
            OR item_id = NEW.id AND item_version = NEW.version);
END;

CREATE TRIGGER report_stamps_item_removed AFTER DELETE ON items
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope IN
        (SELECT id FROM rollouts WHERE item_id = OLD.id AND item_version = OLD.version);
END;

-- The directory, while some rollout exists.
CREATE TRIGGER report_stamps_agency_added AFTER INSERT ON agencies
WHEN EXISTS (SELECT 1 FROM rollouts)
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = '';
END;

CREATE TRIGGER report_stamps_agency_changed AFTER UPDATE OF id, name ON agencies
WHEN EXISTS (SELECT 1 FROM rollouts) AND (OLD.id IS NOT NEW.id OR OLD.name IS NOT NEW.name)
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = '';
END;

CREATE TRIGGER report_stamps_agency_removed AFTER DELETE ON agencies
WHEN EXISTS (SELECT 1 FROM rollouts)
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = '';
END;

CREATE TRIGGER report_stamps_team_added AFTER INSERT ON teams
WHEN EXISTS (SELECT 1 FROM rollouts)
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = '';
END;

CREATE TRIGGER report_stamps_team_changed AFTER UPDATE OF id, agency_id, name ON teams
WHEN EXISTS (SELECT 1 FROM rollouts)
 AND (OLD.id IS NOT NEW.id OR OLD.agency_id IS NOT NEW.agency_id OR OLD.name IS NOT NEW.name)
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = '';
END;

CREATE TRIGGER report_stamps_team_removed AFTER DELETE ON teams
WHEN EXISTS (SELECT 1 FROM rollouts)
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = '';
END;

CREATE TRIGGER report_stamps_person_added AFTER INSERT ON people
WHEN EXISTS (SELECT 1 FROM rollouts)
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = '';
END;

CREATE TRIGGER report_stamps_person_changed AFTER UPDATE OF id, agency_id, team_id ON people
WHEN EXISTS (SELECT 1 FROM rollouts)
 AND (OLD.id IS NOT NEW.id OR OLD.agency_id IS NOT NEW.agency_id OR OLD.team_id IS NOT NEW.team_id)
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = '';
END;

CREATE TRIGGER report_stamps_person_removed AFTER DELETE ON people
WHEN EXISTS (SELECT 1 FROM rollouts)
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = '';
END;

CREATE TRIGGER report_stamps_role_added AFTER INSERT ON person_roles
WHEN EXISTS (SELECT 1 FROM rollouts)
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = '';
END;

CREATE TRIGGER report_stamps_role_changed AFTER UPDATE ON person_roles
WHEN EXISTS (SELECT 1 FROM rollouts)
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = '';
END;

CREATE TRIGGER report_stamps_role_removed AFTER DELETE ON person_roles
WHEN EXISTS (SELECT 1 FROM rollouts)
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = '';
END;

CREATE TRIGGER report_stamps_champion_added AFTER INSERT ON champions
WHEN EXISTS (SELECT 1 FROM rollouts)
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = '';
END;

CREATE TRIGGER report_stamps_champion_changed AFTER UPDATE OF person_id, theme, active ON champions
WHEN EXISTS (SELECT 1 FROM rollouts)
 AND (OLD.person_id IS NOT NEW.person_id OR OLD.theme IS NOT NEW.theme OR OLD.active IS NOT NEW.active)
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = '';
END;

CREATE TRIGGER report_stamps_champion_removed AFTER DELETE ON champions
WHEN EXISTS (SELECT 1 FROM rollouts)
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope = '';
END;
