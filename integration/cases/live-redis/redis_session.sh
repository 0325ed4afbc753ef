#!/bin/sh
# Drives redis-cli against 127.0.0.1:6379; every key starts with reef-test: and is deleted at the end.
set -e
R="redis-cli -h 127.0.0.1 -p 6379"
$R SET reef-test:greeting "hello world"
$R GET reef-test:greeting
$R INCR reef-test:counter
$R INCR reef-test:greeting || true          # WRONGTYPE-like error: not an integer
$R LPUSH reef-test:list a b c
$R LRANGE reef-test:list 0 -1
$R HSET reef-test:hash f1 v1 f2 v2
$R HGETALL reef-test:hash
$R NOSUCHCOMMAND x || true                  # unknown command error
$R GET reef-test:missing
$R EVAL "return string.rep('x', 80000)" 0 > /dev/null    # an 80 kB reply over two segments
$R CONFIG GET maxmemory
$R -3 HGETALL reef-test:hash                # RESP3: a map reply
# A transaction whose LPUSH fails inside EXEC; --pipe sends raw RESP (redis-cli reading
# commands from stdin would first fetch COMMAND DOCS, a 170 kB reply).
printf '*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$12\r\nreef-test:tx\r\n$1\r\n1\r\n*2\r\n$4\r\nINCR\r\n$12\r\nreef-test:tx\r\n*3\r\n$5\r\nLPUSH\r\n$12\r\nreef-test:tx\r\n$1\r\nx\r\n*1\r\n$4\r\nEXEC\r\n' | $R --pipe
printf 'PING\nECHO pipelined\nGET reef-test:greeting\n' | $R --pipe || true  # raw pipelining
$R SUBSCRIBE reef-test:news > /dev/null &
SUB=$!
sleep 0.5
$R PUBLISH reef-test:news "breaking"
$R PUBLISH reef-test:news "more"
sleep 0.3
kill $SUB
$R DEL reef-test:greeting reef-test:counter reef-test:list reef-test:hash reef-test:tx
