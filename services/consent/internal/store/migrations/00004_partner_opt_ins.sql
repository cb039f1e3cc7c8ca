-- Partner opt-ins: a user's consent to a partner (a payment provider,
-- merchant or carrier) pushing them data, and the partner-scoped user id
-- the partner addresses the user by.

-- +goose Up
CREATE TABLE partner_opt_ins (
  user_id         TEXT   NOT NULL,
  opt_in_id       TEXT   NOT NULL,
  partner         TEXT   NOT NULL,
  -- The product the user opted in through.
  client_id       TEXT   NOT NULL,
  scopes          TEXT   NOT NULL,
  partner_user_id TEXT   NOT NULL,
  state           TEXT   NOT NULL CHECK (state IN ('ACTIVE', 'REVOKED')),
  create_time     BIGINT NOT NULL,
  revoke_time     BIGINT,
  PRIMARY KEY (user_id, opt_in_id)
);
-- ResolvePartnerUser: a partner's push names its partner-scoped id; ids are
-- unique across partners and opt-ins.
CREATE UNIQUE INDEX partner_opt_ins_by_partner_user_id ON partner_opt_ins (partner_user_id);
-- At most one ACTIVE opt-in per user and partner: CreatePartnerOptIn
-- returns it rather than making a second.
CREATE UNIQUE INDEX partner_opt_ins_one_active ON partner_opt_ins (user_id, partner) WHERE state = 'ACTIVE';
-- ListPartnerOptIns: a user's opt-ins, newest first.
CREATE INDEX partner_opt_ins_by_user_create ON partner_opt_ins (user_id, create_time, opt_in_id);

-- +goose Down
DROP TABLE partner_opt_ins;
