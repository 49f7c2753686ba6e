"""Benchmark driver for azure-eventhub-checkpointstoreblob-aio 1.2.0, run by
`ehcp-bench` (crates/eventhub-checkpoints-bench) from benches/compare.sh.

Long-lived, like tests/interop/driver.py: reads one JSON command per line on
stdin and answers each with one JSON line on stdout. Each command opens a
fresh BlobCheckpointStore on the container it names (untimed), runs one
workload with the same calls and concurrency as the Rust side, and reports
the wall time (time.perf_counter) and this process's CPU time
(resource.getrusage(RUSAGE_SELF), user + sys) around the workload only.

    {"cmd": "claim_renew", "connection_string": "...", "container": "...", "api_version": "2019-07-07",
     "partitions": 1024, "concurrency": 64, "count_requests": false}
        claims every partition without an etag, then renews every claim with the etag it got;
        at most `concurrency` claims in flight (a sliding window, like the Rust store's
        claim_concurrency)
    {"cmd": "checkpoints", ..., "partitions": 32, "updates": 200}
        one task per partition, each making its updates one after the other
    {"cmd": "list", ..., "repeats": 10, "page_size": 5000, "expect": 2000}
        lists the checkpoints `repeats` times, one listing after the other

    -> {"wall_s": ..., "cpu_s": ..., "user_s": ..., "sys_s": ..., "ops": ...,
        "server_cpu_s": ...,                    (with "server_pid": the server's CPU meanwhile)
        "requests": {"PUT 201": 1024, ...}}     (requests only with "count_requests": true)

With "count_requests" the store gets a raw_response_hook that tallies every
HTTP answer by method and status (a verification pass; not used for timed
runs). Any failure answers {"error": "..."}. Only answers go to stdout.
"""

import asyncio
import json
import os
import resource
import sys
import time
from collections import Counter

from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore

NAMESPACE = "bench.servicebus.windows.net"
EVENTHUB = "hub"
CONSUMER_GROUP = "$Default"
OWNER = "bench-owner"


def _cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


_TICKS = os.sysconf("SC_CLK_TCK")


def _server_cpu(pid):
    """utime + stime of process `pid` (the server), in seconds; None if unknown."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


async def _open(command, counter):
    kwargs = {"api_version": command.get("api_version") or "2019-07-07"}
    if counter is not None:
        def hook(response):
            counter[f"{response.http_request.method} {response.http_response.status_code}"] += 1

        kwargs["raw_response_hook"] = hook
    store = BlobCheckpointStore.from_connection_string(
        command["connection_string"], command["container"], **kwargs
    )
    await store.__aenter__()
    return store


async def claim_renew(store, command):
    partitions = command["partitions"]
    window = asyncio.Semaphore(command["concurrency"])

    async def claim_one(ownership):
        async with window:
            return await store.claim_ownership([ownership])

    claims = [
        {
            "fully_qualified_namespace": NAMESPACE,
            "eventhub_name": EVENTHUB,
            "consumer_group": CONSUMER_GROUP,
            "partition_id": str(p),
            "owner_id": OWNER,
        }
        for p in range(partitions)
    ]
    claimed = [o for result in await asyncio.gather(*(claim_one(c) for c in claims)) for o in result]
    renewed = [o for result in await asyncio.gather(*(claim_one(c) for c in claimed)) for o in result]
    if len(claimed) != partitions or len(renewed) != partitions:
        raise RuntimeError(f"claimed {len(claimed)} and renewed {len(renewed)} of {partitions}")
    return 2 * partitions


async def checkpoints(store, command):
    partitions, updates = command["partitions"], command["updates"]

    async def partition(p):
        for u in range(updates):
            await store.update_checkpoint(
                {
                    "fully_qualified_namespace": NAMESPACE,
                    "eventhub_name": EVENTHUB,
                    "consumer_group": CONSUMER_GROUP,
                    "partition_id": str(p),
                    "offset": str(u * 100),
                    "sequence_number": u,
                }
            )

    await asyncio.gather(*(partition(p) for p in range(partitions)))
    return partitions * updates


async def list_checkpoints(store, command):
    for _ in range(command["repeats"]):
        found = await store.list_checkpoints(
            NAMESPACE, EVENTHUB, CONSUMER_GROUP, results_per_page=command["page_size"]
        )
        if len(found) != command["expect"]:
            raise RuntimeError(f"listed {len(found)} checkpoints, expected {command['expect']}")
    return command["repeats"]


WORKLOADS = {"claim_renew": claim_renew, "checkpoints": checkpoints, "list": list_checkpoints}


async def run(command):
    workload = WORKLOADS[command["cmd"]]
    counter = Counter() if command.get("count_requests") else None
    store = await _open(command, counter)
    try:
        server0 = _server_cpu(command.get("server_pid"))
        user0, sys0 = _cpu()
        start = time.perf_counter()
        ops = await workload(store, command)
        wall = time.perf_counter() - start
        user1, sys1 = _cpu()
        server1 = _server_cpu(command.get("server_pid"))
    finally:
        await store.close()
    answer = {
        "wall_s": wall,
        "cpu_s": (user1 - user0) + (sys1 - sys0),
        "user_s": user1 - user0,
        "sys_s": sys1 - sys0,
        "ops": ops,
    }
    if server0 is not None and server1 is not None:
        answer["server_cpu_s"] = server1 - server0
    if counter is not None:
        answer["requests"] = dict(counter)
    return answer


def main():
    loop = asyncio.new_event_loop()
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                reply = loop.run_until_complete(run(json.loads(line)))
            except Exception as error:  # every failure is an answer
                reply = {"error": f"{type(error).__name__}: {error}"}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
    finally:
        loop.close()


if __name__ == "__main__":
    main()
