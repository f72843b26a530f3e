-- Recorders: machines on the roster that upload recordings and hold nothing, enrolled with
-- a recorder invite.
ALTER TABLE members DROP CONSTRAINT members_role_check;
ALTER TABLE members ADD CONSTRAINT members_role_check
    CHECK (role IN ('admin', 'member', 'recorder'));

ALTER TABLE enrolment_codes DROP CONSTRAINT enrolment_codes_purpose_check;
ALTER TABLE enrolment_codes ADD CONSTRAINT enrolment_codes_purpose_check
    CHECK (purpose IN ('first-admin', 'member', 'recorder', 'node'));
