\set n random(1, 1000)
SELECT :n::int + 1 AS next;
SELECT 'reef-pgbench', :n::int * 2;
