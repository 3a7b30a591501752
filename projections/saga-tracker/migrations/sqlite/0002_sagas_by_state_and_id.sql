-- A walk through the listing goes by correlation id, which never changes; this index serves
-- it for the sagas in a state (all of them go by the primary key).
CREATE INDEX sagas_by_state_and_id ON sagas (state, correlation_id);
