#!/bin/sh
# Drives mosquitto_pub / mosquitto_sub against 127.0.0.1:1883. Nothing is retained and
# every session is clean, so the broker keeps nothing.
H="-h 127.0.0.1 -p 1883"
# A 3.1.1 subscriber for three messages, QoS 2 subscription.
mosquitto_sub $H -V mqttv311 -i reef-sub-311 -q 2 -t 'reef-test/#' -C 3 -v > /dev/null &
# An MQTT 5 subscriber with a subscription identifier, two messages.
mosquitto_sub $H -V mqttv5 -i reef-sub-5 -q 1 -t 'reef-test/v5/+' -C 2 \
    -D subscribe subscription-identifier 7 > /dev/null &
sleep 0.5
mosquitto_pub $H -V mqttv311 -i reef-pub-q0 -q 0 -t reef-test/a -m "qos zero"
mosquitto_pub $H -V mqttv311 -i reef-pub-q1 -q 1 -t reef-test/b -m "qos one"
mosquitto_pub $H -V mqttv311 -i reef-pub-q2 -q 2 -t reef-test/c -m "qos two"
mosquitto_pub $H -V mqttv5 -i reef-pub-5 -q 1 -t reef-test/v5/x -m '{"t":21.5}' \
    -D publish content-type application/json -D publish user-property k v
mosquitto_pub $H -V mqttv5 -i reef-pub-5b -q 2 -t reef-test/v5/y -m "$(head -c 3000 /dev/zero | tr '\0' 'p')"
# A publish nobody subscribes to (MQTT 5 PUBACK reason 16, no matching subscribers).
mosquitto_pub $H -V mqttv5 -i reef-pub-5c -q 1 -t reef-nobody/z -m lonely
# An idle subscriber with a five-second keep-alive: PINGREQ / PINGRESP, then UNSUBSCRIBE
# is not sent: mosquitto_sub just disconnects after -W seconds.
mosquitto_sub $H -V mqttv311 -i reef-idle -k 5 -t reef-test/idle -W 12 > /dev/null 2>&1 &
# A refused connection (unsupported protocol level), sent raw.
python3 "$(dirname "$0")/mqtt_raw.py"
wait
