#!/usr/bin/env python3
"""Read Reef entries straight from NATS JetStream, with no Reef code.

Workers publish Arrow IPC stream bytes, one RecordBatch per message, on
reef.v1.node.<node>.entries in the REEF_RAW stream. This reads every stored message
on a subject (wildcards welcome), decodes the batches with pyarrow and prints a JSON
summary: messages, entries, and entries per method and status.

    pip install nats-py pyarrow
    python3 read_entries.py --nats nats://127.0.0.1:4222 --subject 'reef.v1.node.*.entries'
"""
import argparse
import asyncio
import collections
import json

import nats
import pyarrow as pa
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy


async def main(url, subject, stream):
    nc = await nats.connect(url)
    js = nc.jetstream()
    info = await js.stream_info(stream)
    # An ephemeral pull consumer from the first message: nothing is left behind.
    sub = await js.pull_subscribe(
        subject,
        durable=None,
        stream=stream,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
    )
    messages = entries = 0
    by_method = collections.Counter()
    by_status = collections.Counter()
    while messages < info.state.messages:
        try:
            batch = await sub.fetch(256, timeout=1)
        except nats.errors.TimeoutError:
            break
        for msg in batch:
            messages += 1
            assert msg.headers["Content-Type"] == "application/vnd.apache.arrow.stream"
            table = pa.ipc.open_stream(msg.data).read_all()
            entries += table.num_rows
            for method, status in zip(table.column("method").to_pylist(), table.column("status_code").to_pylist()):
                by_method[method or "-"] += 1
                by_status[str(status) if status is not None else "-"] += 1
    await nc.close()
    print(json.dumps({
        "messages": messages,
        "entries": entries,
        "by_method": dict(by_method),
        "by_status": dict(by_status),
    }, sort_keys=True))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nats", default="nats://127.0.0.1:4222")
    ap.add_argument("--subject", default="reef.v1.node.*.entries")
    ap.add_argument("--stream", default="REEF_RAW")
    a = ap.parse_args()
    asyncio.run(main(a.nats, a.subject, a.stream))
