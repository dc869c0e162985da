"""A small edge process for the crash test: feeds events into an OutboxSink, printing each commit.

    python -m tests.edge.mqtt.feeder --port P --outbox F --start 0 --count 300 --delay 0.005

Prints ``emitted <i>`` after ``emit`` returned for event ``i`` (it is on disk then),
``drained`` once the outbox is empty, and exits.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from edge.mqtt import OutboxSink
from tests.edge.mqtt.support import make_event, make_evidence, sink_config


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--outbox", type=Path, required=True)
    parser.add_argument("--device", default="van-09")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    sink = OutboxSink.open(sink_config(args.port, args.outbox), device_id=args.device)
    for i in range(args.start, args.count):
        evidence = make_evidence(i, size=500) if i % 10 == 0 else None
        sink.emit(make_event(args.device, i, evidence.ref if evidence else None), evidence)
        print(f"emitted {i}", flush=True)
        time.sleep(args.delay)
    drained = sink.wait_until_delivered(30)
    print("drained" if drained else "not drained", flush=True)
    sink.close()
    return 0 if drained else 1


if __name__ == "__main__":
    sys.exit(main())
