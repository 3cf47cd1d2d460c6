-- Counters kept up to date with every write, so that no read grows with the catalog or with
-- the history of matches: a channel's image count (AddImage's capacity check, GetImages'
-- totalcount), its matches ever counted and each identifier's (GetImages' matchratio).
ALTER TABLE channels ADD COLUMN image_count integer NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN match_count bigint NOT NULL DEFAULT 0;

CREATE TABLE match_totals (
    channel_id bigint NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    identifier text NOT NULL,
    count      bigint NOT NULL,
    PRIMARY KEY (channel_id, identifier)
);

INSERT INTO match_totals (channel_id, identifier, count)
    SELECT channel_id, identifier, sum(count) FROM match_counts GROUP BY channel_id, identifier;
UPDATE channels c SET
    image_count = (SELECT count(*) FROM images i WHERE i.channel_id = c.id),
    match_count = coalesce((SELECT sum(count) FROM match_totals t WHERE t.channel_id = c.id), 0);

-- Every insert and delete of an image, whatever the path, moves its channel's count.
CREATE FUNCTION images_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE channels SET image_count = image_count + 1 WHERE id = NEW.channel_id;
    ELSE
        UPDATE channels SET image_count = image_count - 1 WHERE id = OLD.channel_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER images_count AFTER INSERT OR DELETE ON images
    FOR EACH ROW EXECUTE FUNCTION images_count();
