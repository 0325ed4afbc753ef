"""Server-side prepared statements (COM_STMT_PREPARE / EXECUTE / CLOSE) with
mysql-connector-python, against the MariaDB at 127.0.0.1:3306 (user root, no
password, database test). The table is unique to the run and dropped at the end."""
import os
import sys

import mysql.connector

table = sys.argv[1] if len(sys.argv) > 1 else "reef_mysql_%d" % os.getpid()
conn = mysql.connector.connect(host="127.0.0.1", port=3306, user="root", password="",
                               database="test", use_pure=True, ssl_disabled=True,
                               autocommit=True)
cur = conn.cursor(prepared=True)
cur.execute("CREATE TABLE %s (id INT PRIMARY KEY, name VARCHAR(20))" % table)
cur.execute("INSERT INTO %s VALUES (?, ?)" % table, (1, "one"))
cur.execute("INSERT INTO %s VALUES (?, ?)" % table, (2, "two"))
cur.execute("SELECT id, name FROM %s WHERE id >= ? ORDER BY id" % table, (1,))
print(cur.fetchall())
try:
    cur.execute("INSERT INTO %s VALUES (?, ?)" % table, (1, "dup"))
except mysql.connector.Error as e:
    print("error", e.errno)
cur.close()
conn.cursor().execute("DROP TABLE %s" % table)
conn.close()
