-- Identifiers and channel names sort by their bytes (code points), whatever locale the server
-- was created with: GetImages' order, Statistics' order and every page boundary are the same
-- on every deployment. Equality is unchanged (it was already byte for byte).
ALTER TABLE images ALTER COLUMN identifier TYPE text COLLATE "C";
ALTER TABLE match_counts ALTER COLUMN identifier TYPE text COLLATE "C";
ALTER TABLE match_totals ALTER COLUMN identifier TYPE text COLLATE "C";
ALTER TABLE channels ALTER COLUMN name TYPE text COLLATE "C";
