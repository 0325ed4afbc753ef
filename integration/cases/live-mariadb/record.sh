#!/bin/sh
# Records capture.pcap: the mariadb client (plain and --compress) and
# mysql-connector-python's prepared statements against the MariaDB at
# 127.0.0.1:3306 (root, no password, database `test`), on the loopback. Tables are
# unique to the run and dropped at the end. Run as root (tcpdump).
set -eu
cd "$(dirname "$0")"
T="reef_mysql_$$"
tcpdump -i lo -U -w capture.pcap 'tcp port 3306' >/dev/null 2>&1 &
TP=$!
sleep 1
# One mariadb session: rows, a duplicate key and an unknown column (errors, the
# session goes on with --force), PREPARE/EXECUTE in SQL (these travel as COM_QUERY).
mariadb -h 127.0.0.1 -P 3306 -u root --force test <<SQL >/dev/null 2>&1 || true
CREATE TABLE $T (id INT PRIMARY KEY, name VARCHAR(20));
INSERT INTO $T VALUES (1, 'one'), (2, 'two'), (3, 'three');
SELECT id, name FROM $T ORDER BY id;
INSERT INTO $T VALUES (1, 'dup');
SELECT nosuch FROM $T;
UPDATE $T SET name = 'TWO' WHERE id >= 2;
PREPARE s FROM 'SELECT name FROM $T WHERE id = ?';
SET @i = 2;
EXECUTE s USING @i;
DROP TABLE $T;
SQL
# The compressed protocol.
mariadb -h 127.0.0.1 -P 3306 -u root --compress test \
  -e "SELECT table_name FROM information_schema.tables WHERE table_schema = 'information_schema' ORDER BY 1 LIMIT 5; SELECT 'reef-compressed'" >/dev/null
# The binary protocol: COM_STMT_PREPARE, COM_STMT_EXECUTE, COM_STMT_CLOSE.
python3 prepared.py "${T}_ps" >/dev/null
sleep 1
kill "$TP"
wait "$TP" || true
