-- Whether a person can be reached on a kind of channel, answered from the
-- index alone: planning asks it of every person in an audience.
CREATE INDEX channel_identities_reachable ON channel_identities (person_id, channel)
    WHERE unreachable_at IS NULL;
