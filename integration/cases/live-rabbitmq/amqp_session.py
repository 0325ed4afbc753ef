"""Drives RabbitMQ at 127.0.0.1:5672 (guest/guest) with pika: declares, publishes,
consumes, gets, a channel error and a returned message. Everything it declares is
deleted before it disconnects."""
import pika

# A small frame-max so that a 20 kB message takes several body frames.
params = pika.ConnectionParameters("127.0.0.1", 5672, "/", pika.PlainCredentials("guest", "guest"),
                                   frame_max=4096)
conn = pika.BlockingConnection(params)
ch = conn.channel()
ch.exchange_declare("reef-test-ex", exchange_type="direct", auto_delete=True)
q = ch.queue_declare("reef-test-q", auto_delete=False).method.queue
ch.queue_bind(q, "reef-test-ex", routing_key="orders")
ch.basic_qos(prefetch_count=5)
for i in range(3):
    ch.basic_publish("reef-test-ex", "orders", b'{"order": %d}' % i,
                     pika.BasicProperties(content_type="application/json", delivery_mode=2))
ch.basic_publish("", q, b"x" * 20_000)            # a message in several body frames
got = ch.basic_get(q, auto_ack=True)
print("get", got[0].delivery_tag if got[0] else None, len(got[2] or b""))
seen = 0
for method, props, body in ch.consume(q, inactivity_timeout=1):
    if method is None:
        break
    ch.basic_ack(method.delivery_tag)
    seen += 1
    if seen == 3:
        break
ch.cancel()
print("consumed", seen)
print("empty get", ch.basic_get(q, auto_ack=True)[0])
# A mandatory publish nobody can route: basic.return with 312 NO_ROUTE.
ch.confirm_delivery()
try:
    ch.basic_publish("reef-test-ex", "nowhere", b"unroutable", mandatory=True)
except pika.exceptions.UnroutableError as e:
    print("returned", e)
ch.queue_unbind(q, "reef-test-ex", routing_key="orders")
ch.queue_delete(q)
ch.exchange_delete("reef-test-ex")
# A channel error: redeclaring the (now deleted, so re-created) exchange with another type.
ch2 = conn.channel()
ch2.exchange_declare("reef-test-ex2", exchange_type="direct", auto_delete=True)
try:
    ch2.exchange_declare("reef-test-ex2", exchange_type="topic")
except pika.exceptions.ChannelClosedByBroker as e:
    print("channel closed", e)
ch3 = conn.channel()
ch3.exchange_delete("reef-test-ex2")
conn.close()
