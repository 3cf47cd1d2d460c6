-- The images as uploaded, so that thumbnails, exports and a rebuild of every image's features
-- (after a change of the recognition pipeline) need nothing from the customer again. Keyed by
-- the SHA-256 of the bytes: the same file added to several channels is kept once. An image
-- added before this migration has none (`original` NULL).
CREATE TABLE originals (
    sha256     bytea PRIMARY KEY CHECK (length(sha256) = 32),
    media_type text NOT NULL,
    size       integer NOT NULL,
    bytes      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- JPEG and PNG data do not compress: store it out of line without trying to.
ALTER TABLE originals ALTER COLUMN bytes SET STORAGE EXTERNAL;

ALTER TABLE images ADD COLUMN original bytea REFERENCES originals (sha256);
CREATE INDEX images_original ON images (original) WHERE original IS NOT NULL;

-- Whenever an image goes, by whatever path (RemoveImage, a channel or user deleted), its
-- original goes with it once no image refers to it. The original's row is locked first: an
-- AddImage of the same bytes takes the same lock (its INSERT ... ON CONFLICT DO UPDATE), so
-- either this sees that image's row, or that insert waits and writes the original again.
CREATE FUNCTION images_original() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.original IS NOT NULL THEN
        PERFORM 1 FROM originals WHERE sha256 = OLD.original FOR UPDATE;
        DELETE FROM originals o WHERE o.sha256 = OLD.original
            AND NOT EXISTS (SELECT 1 FROM images i WHERE i.original = OLD.original);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER images_original AFTER DELETE ON images
    FOR EACH ROW EXECUTE FUNCTION images_original();

-- When each image's features were last extracted (AddImage, or `cloudreco reindex`); for
-- images older than this column, when it was added (no earlier than their extraction).
ALTER TABLE images ADD COLUMN features_at timestamptz NOT NULL DEFAULT now();
-- `shard_changes.op` 4: an image's features were replaced (`cloudreco reindex`).
