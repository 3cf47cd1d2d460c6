-- Users and channels are created by the operator (`cloudreco user|channel create`).
CREATE TABLE users (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    secret_salt bytea NOT NULL,
    secret_hash bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Channel names are global: GetImage names a channel without credentials, and 20004
-- ("not your channel") means the name exists under another user.
CREATE TABLE channels (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       text NOT NULL UNIQUE,
    max_images integer NOT NULL CHECK (max_images > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX channels_user ON channels (user_id);

-- The catalog. `features` is what a matcher needs to rebuild its index (see matcher/features.py),
-- `shard` the matcher shard that holds the image (modulo the running shard count).
CREATE TABLE images (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel_id      bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    identifier      text NOT NULL,
    metadata        text,
    level           smallint NOT NULL,
    shard           integer NOT NULL,
    width           integer NOT NULL,
    height          integer NOT NULL,
    feature_version smallint NOT NULL,
    features        bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, identifier)
);
CREATE INDEX images_shard ON images (shard, id);

-- Daily FindImage matches. Keyed by identifier, not image id, so that history outlives
-- RemoveImage and a re-added identifier continues its series.
CREATE TABLE match_counts (
    channel_id bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    identifier text NOT NULL,
    day        date NOT NULL,
    count      bigint NOT NULL,
    PRIMARY KEY (channel_id, identifier, day)
);
CREATE INDEX match_counts_day ON match_counts (channel_id, day);
