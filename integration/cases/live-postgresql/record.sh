#!/bin/sh
# Records capture.pcap: psql and pgbench against the PostgreSQL at 127.0.0.1:5432
# (trust authentication, database `test`), on the loopback. The table is unique to
# the run and dropped at the end. Run as root (tcpdump).
set -eu
cd "$(dirname "$0")"
export PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres PGDATABASE=test
T="reef_pg_$$"
tcpdump -i lo -U -w capture.pcap 'tcp port 5432' >/dev/null 2>&1 &
TP=$!
sleep 1
# psql, one connection, in plain text: a table, rows, two failing statements, a
# prepared statement in SQL (PREPARE/EXECUTE travel as simple queries), COPY.
PGSSLMODE=disable psql -X -q <<SQL || true
CREATE TABLE $T (id int PRIMARY KEY, name text);
INSERT INTO $T VALUES (1, 'one'), (2, 'two');
SELECT id, name FROM $T ORDER BY id;
INSERT INTO $T VALUES (1, 'dup');
SELECT 1/0;
PREPARE q(int) AS SELECT name FROM $T WHERE id = \$1;
EXECUTE q(2);
COPY $T FROM STDIN;
3	three
4	four
\.
SELECT count(*) FROM $T;
DROP TABLE $T;
SQL
# pgbench with the extended protocol and named prepared statements (Parse once,
# Bind/Execute on every transaction); its script needs no tables.
PGSSLMODE=disable pgbench -n -M prepared -c 1 -t 3 -f pgbench.sql >/dev/null
# psql asking for TLS: one SSLRequest, then encrypted bytes.
PGSSLMODE=require psql -X -q -c 'SELECT 1' >/dev/null
sleep 1
kill "$TP"
wait "$TP" || true
