"""A RESP3 client on a raw socket: HELLO 3, client-side caching with an invalidation
push, and a pub/sub message as a push. Keys start with reef-test: and are deleted."""
import socket, time

def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out

def talk(s, data, wait=0.2):
    s.sendall(data)
    time.sleep(wait)
    s.setblocking(False)
    try:
        return s.recv(1 << 20)
    except BlockingIOError:
        return b""
    finally:
        s.setblocking(True)

a = socket.create_connection(("127.0.0.1", 6379))
b = socket.create_connection(("127.0.0.1", 6379))
print(talk(a, cmd("HELLO", "3")))
print(talk(a, cmd("SET", "reef-test:cached", "v1")))
print(talk(a, cmd("CLIENT", "TRACKING", "on")))
print(talk(a, cmd("GET", "reef-test:cached")))
print(talk(b, cmd("SET", "reef-test:cached", "v2")))       # invalidates a's cache
print(talk(a, cmd("PING")))                              # the push arrives around here
print(talk(a, cmd("SUBSCRIBE", "reef-test:push")))
print(talk(b, cmd("PUBLISH", "reef-test:push", "hi")))
print(talk(a, cmd("UNSUBSCRIBE")))
print(talk(b, cmd("DEL", "reef-test:cached")))
a.close()
b.close()
