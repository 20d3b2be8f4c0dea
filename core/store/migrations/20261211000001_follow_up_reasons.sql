-- The practice feedback loop (issue 19): a follow-up answer that says the
-- learning was not used may carry one of the follow-up's reasons ("Need
-- more training"), chosen after the answer. The first reason stands.
-- Not part of the answer's evidence-chain content, which is unchanged.
ALTER TABLE follow_up_answers ADD COLUMN reason TEXT;
