-- Every acknowledgement adds a link to the evidence chain in the same
-- transaction, so each index on the chain is paid for on every POST. The
-- (kind, seq) index served no query: lookups by kind go through
-- (kind, ref), whose entries carry seq (the rowid) too, and reads in
-- order go by seq itself. Dropping it takes one B-tree insert off each
-- evidence event (issue 20: the chain's cost to acknowledgement POSTs).
DROP INDEX IF EXISTS evidence_chain_kind;
