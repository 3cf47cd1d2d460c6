-- The shard map: how many shards the catalog is spread over. One row; every process compares
-- its CLOUDRECO_SHARDS with it and refuses to start on a mismatch. `id` names this database
-- and `generation` changes with every reshard, so index snapshots taken of another database
-- or map are known to be foreign.
CREATE TABLE cluster (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    shards     integer NOT NULL CHECK (shards > 0),
    generation bigint NOT NULL DEFAULT 1
);

-- Each shard's change log: every replica of a shard applies these in `seq` order, from the
-- position its index (or snapshot) reflects. `shard_heads` holds the last seq per shard; a
-- writer bumps it in the same transaction as the change, which serialises the shard's writers
-- until commit, so a reader that has seen seq N has seen every seq below it.
CREATE TABLE shard_heads (
    shard integer PRIMARY KEY,
    seq   bigint NOT NULL
);

CREATE TABLE shard_changes (
    shard      integer NOT NULL,
    seq        bigint NOT NULL,
    op         smallint NOT NULL,  -- 1 image added, 2 image removed, 3 channel dropped
    image_id   bigint NOT NULL,
    channel_id bigint NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shard, seq)
);
