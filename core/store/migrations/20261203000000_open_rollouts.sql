-- Open rollouts (issue 23): a rollout with `enrol = "joiners"` takes in,
-- at each directory import until its `open_until` day, people who have
-- come into its audience since it started. A joiner's row is like any
-- member's, with two more facts:
--
--   joined_at  when the import that enrolled them ran (Unix ms); NULL for
--              the members the rollout started with;
--   shift_days how many whole days later than their wave's their own
--              timetable runs (0 for starters, and for a joiner whose wave
--              had not sent yet): the scheduler works their steps out from
--              the wave's, moved by that many local days.
--
-- Joiners are inserted by the import, in its own transaction, which raises
-- the rollout's report stamp and member count itself (one statement per
-- rollout, as `create_rollout` does for the starters), so an insert needs
-- no trigger per row.

ALTER TABLE rollout_members ADD COLUMN joined_at INTEGER;
ALTER TABLE rollout_members ADD COLUMN shift_days INTEGER NOT NULL DEFAULT 0;

-- Reports count who joined later, and when: a change to `joined_at`
-- changes them.
DROP TRIGGER report_stamps_member_changed;
CREATE TRIGGER report_stamps_member_changed
AFTER UPDATE OF rollout_id, person_id, wave, team_id, agency_id, out_reason, joined_at ON rollout_members
WHEN OLD.rollout_id IS NOT NEW.rollout_id OR OLD.person_id IS NOT NEW.person_id OR OLD.wave IS NOT NEW.wave
  OR OLD.team_id IS NOT NEW.team_id OR OLD.agency_id IS NOT NEW.agency_id OR OLD.out_reason IS NOT NEW.out_reason
  OR OLD.joined_at IS NOT NEW.joined_at
BEGIN
    UPDATE report_stamps SET stamp = stamp + 1 WHERE scope IN (OLD.rollout_id, NEW.rollout_id);
END;
