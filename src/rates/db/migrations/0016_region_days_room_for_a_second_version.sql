-- Every batch adds to nearly every region-day of the large regions (a 100k-row batch on random
-- lanes updated 59k of 62k rows at 10M prices). At fillfactor 80 only a fifth of those updates
-- found room on their page: the rest were non-HOT, so each batch doubled the table and its key
-- index until autovacuum came, and readers walked dead entries meanwhile. At 40 each page keeps
-- room for a second version of every row, so every update stays on its page (HOT) and the next
-- one prunes the version before it: measured over ten such batches, 100% HOT, table and index
-- the same size before and after. The table is small (10 MB at 10M prices), so the room costs
-- little. Existing pages keep their fill until rewritten (a dump load or demo rebuild does so).
ALTER TABLE region_days SET (fillfactor = 40);
