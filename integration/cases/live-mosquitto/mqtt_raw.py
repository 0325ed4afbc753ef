"""Raw MQTT CONNECTs the command-line clients will not send: an unsupported protocol
level (the broker answers with a refusal and closes)."""
import socket, time

def connect(level, client_id):
    vh = b"\x00\x04MQTT" + bytes([level, 0x02, 0, 60])
    if level == 5:
        vh += b"\x00"
    body = vh + len(client_id).to_bytes(2, "big") + client_id
    return bytes([0x10, len(body)]) + body

s = socket.create_connection(("127.0.0.1", 1883))
s.sendall(connect(9, b"reef-bad-level"))
time.sleep(0.3)
print(s.recv(100))
s.close()
