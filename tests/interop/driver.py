"""Drives azure-eventhub-checkpointstoreblob-aio's BlobCheckpointStore for the
Rust interop tests (crates/eventhub-checkpoints-blob/tests/interop_python.rs).

Long-lived: reads one JSON command per line on stdin and answers each with
one JSON line on stdout, until stdin closes. Answers carry exactly what the
Python store returns, unchanged (etags as it gives them, last_modified_time
as a float, sequence numbers as ints).

    {"cmd": "connect", "connection_string": "...", "container": "...", "api_version": "2019-07-07"}
        -> {"result": null}                       (api_version optional: the store's default)
    {"cmd": "list_ownership", "fully_qualified_namespace": "...", "eventhub_name": "...",
     "consumer_group": "..."}
        -> {"result": [{ownership dict}, ...]}
    {"cmd": "claim_ownership", "ownerships": [{"fully_qualified_namespace": ..., "eventhub_name": ...,
     "consumer_group": ..., "partition_id": ..., "owner_id": ..., "etag": ... (optional)}, ...]}
        -> {"result": [{claimed ownership dict}, ...]}   (lost claims are left out, as the store does)
    {"cmd": "update_checkpoint", "checkpoint": {..., "offset": "123", "sequence_number": 7}}
        -> {"result": null}
    {"cmd": "list_checkpoints", (same scope fields as list_ownership)}
        -> {"result": [{checkpoint dict}, ...]}

Any failure answers {"error": "<ExceptionType>: <message>", "error_type": "<ExceptionType>"}.
Every answer also carries "log": [...] with what the store logged (WARNING and
above) while running the command, when it logged anything: the store swallows
some errors and only logs them.

Only answers go to stdout; tracebacks of the driver itself go to stderr.
"""

import asyncio
import json
import logging
import sys

from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(f"{record.levelname} {record.name}: {record.getMessage()}")


class Driver:
    def __init__(self):
        self.store = None

    async def connect(self, command):
        if self.store is not None:
            await self.store.close()
            self.store = None
        kwargs = {}
        if command.get("api_version"):
            kwargs["api_version"] = command["api_version"]
        store = BlobCheckpointStore.from_connection_string(
            command["connection_string"], command["container"], **kwargs
        )
        await store.__aenter__()
        self.store = store
        return None

    def _store(self):
        if self.store is None:
            raise RuntimeError("not connected: send a connect command first")
        return self.store

    async def list_ownership(self, command):
        return list(
            await self._store().list_ownership(
                command["fully_qualified_namespace"], command["eventhub_name"], command["consumer_group"]
            )
        )

    async def claim_ownership(self, command):
        return list(await self._store().claim_ownership(command["ownerships"]))

    async def update_checkpoint(self, command):
        await self._store().update_checkpoint(command["checkpoint"])
        return None

    async def list_checkpoints(self, command):
        return list(
            await self._store().list_checkpoints(
                command["fully_qualified_namespace"], command["eventhub_name"], command["consumer_group"]
            )
        )

    async def close(self):
        if self.store is not None:
            await self.store.close()
            self.store = None


COMMANDS = {
    "connect": Driver.connect,
    "list_ownership": Driver.list_ownership,
    "claim_ownership": Driver.claim_ownership,
    "update_checkpoint": Driver.update_checkpoint,
    "list_checkpoints": Driver.list_checkpoints,
}


def answer(loop, driver, collect, line):
    collect.records.clear()
    try:
        command = json.loads(line)
        handler = COMMANDS.get(command.get("cmd"))
        if handler is None:
            raise ValueError(f"unknown command {command.get('cmd')!r}")
        reply = {"result": loop.run_until_complete(handler(driver, command))}
    except Exception as error:  # every failure is an answer, never the end of the driver
        reply = {"error": f"{type(error).__name__}: {error}", "error_type": type(error).__name__}
    if collect.records:
        reply["log"] = list(collect.records)
    return reply


def main():
    collect = _Collect()
    root = logging.getLogger()
    root.addHandler(collect)
    root.setLevel(logging.WARNING)

    loop = asyncio.new_event_loop()
    driver = Driver()
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            reply = answer(loop, driver, collect, line)
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
    finally:
        loop.run_until_complete(driver.close())
        loop.close()


if __name__ == "__main__":
    main()
