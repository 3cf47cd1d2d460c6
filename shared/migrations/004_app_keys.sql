-- App keys: credentials an owner hands to apps and web pages. They can run FindImage and
-- GetImage only, in the listed channels (or all of the owner's), each with an optional
-- FindImage rate limit. Their names start with "ak_", a prefix no user name may take.
CREATE TABLE app_keys (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL UNIQUE,
    secret_salt  bytea NOT NULL,
    secret_hash  bytea NOT NULL,
    all_channels boolean NOT NULL,
    rate_limit   real CHECK (rate_limit > 0),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX app_keys_user ON app_keys (user_id);

-- A deleted channel leaves the keys that named it; a key left with none finds nothing.
CREATE TABLE app_key_channels (
    key_id     bigint NOT NULL REFERENCES app_keys (id) ON DELETE CASCADE,
    channel_id bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    PRIMARY KEY (key_id, channel_id)
);
CREATE INDEX app_key_channels_channel ON app_key_channels (channel_id);
