-- Admin search at a million subscribers (see `search_subscribers`): indexes that answer
-- each kind of search text quickly, and statistics good enough for the planner to choose
-- between them and a newest-first walk that stops at the page's end.

-- Every character and every pair of adjacent characters of the email key and of the name
-- key, for texts of one or two characters (trigram indexes cannot look those up).
-- The two keys are joined by a line break so no pair spans them; search text never holds
-- a line break (it is trimmed, and texts this short have no inside), so the broken pairs
-- around one never matter. A plain SQL expression: the planner inlines it, so inserts
-- evaluate built-in functions only.
CREATE FUNCTION subscriber_grams(email_key TEXT, name_key TEXT) RETURNS TEXT[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT string_to_array(email_key || E'\n' || name_key, NULL)
    || string_to_array(regexp_replace(email_key || E'\n' || name_key, '..', E'\\&\n', 'g'), E'\n')
    || string_to_array(regexp_replace(substr(email_key || E'\n' || name_key, 2), '..', E'\\&\n', 'g'), E'\n')
$$;
-- Byte order ("C") for the elements: the index compares them while it is built and
-- written, and the database's collation makes that several times slower.
CREATE INDEX subscribers_grams ON subscribers USING gin ((subscriber_grams(email_key, name_key)) COLLATE "C");

-- Addresses split at their single @. A text with an @ matches where the local part ends
-- with what comes before the @ and the domain starts with what follows: two prefix
-- searches, one over the local parts reversed. Intersecting the trigrams of a whole
-- address, which every address shares ("gma", "com"), took 55–230 ms.
CREATE INDEX subscribers_local_reversed ON subscribers (reverse(split_part(email_key, '@', 1)) text_pattern_ops);
-- The id makes "this domain, newest first" a walk of the index that stops at the page's end.
CREATE INDEX subscribers_domain ON subscribers (split_part(email_key, '@', 2) text_pattern_ops, id);
-- A text without an @ lies inside the local part or inside the domain: one trigram index
-- for each, so a local part is never intersected with the trigrams of common domains.
CREATE INDEX subscribers_local_trgm ON subscribers USING gin (split_part(email_key, '@', 1) gin_trgm_ops);
CREATE INDEX subscribers_domain_trgm ON subscribers USING gin (split_part(email_key, '@', 2) gin_trgm_ops);
DROP INDEX subscribers_email_trgm;

-- The planner estimates `LIKE '%text%'` by trying the pattern on the histogram: 1,000
-- values tell a text found in 0.1% of the rows (walk newest first: slow) from one found in
-- 10% (walk: fast), where the default 100 told only "under 1%" from "over".
ALTER TABLE subscribers ALTER COLUMN name_key SET STATISTICS 1000;
ALTER INDEX subscribers_local_reversed ALTER COLUMN 1 SET STATISTICS 1000;
ALTER INDEX subscribers_domain ALTER COLUMN 1 SET STATISTICS 1000;
ALTER INDEX subscribers_local_trgm ALTER COLUMN 1 SET STATISTICS 1000;
ALTER INDEX subscribers_domain_trgm ALTER COLUMN 1 SET STATISTICS 1000;
ANALYZE subscribers;
