-- Statistics per identifier within a channel: the records in answer order (day, identifier),
-- so that a page is read in order from the index and stops at its end.
DROP INDEX match_counts_day;
CREATE INDEX match_counts_day ON match_counts (channel_id, day, identifier) INCLUDE (count);
