-- Daily matches per channel, kept with every match beside the per-identifier counts, so that
-- Statistics without a channel reads one row per channel and day however many identifiers
-- were matched.
CREATE TABLE channel_days (
    channel_id bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    day        date NOT NULL,
    count      bigint NOT NULL,
    PRIMARY KEY (channel_id, day)
);

INSERT INTO channel_days (channel_id, day, count)
    SELECT channel_id, day, sum(count) FROM match_counts GROUP BY channel_id, day;
