"""Storage: accepted batches to durable InfluxDB writes, and back.

- `pipeline`: the write pipeline with explicit backpressure; a batch is acked only after its
  write (and its evaluation) succeeded.
- `influx` (v1 `/write` and v2 `/api/v2/write`), `setup` (the v1 database, the v2 bucket),
  `status` (what the writes have been doing, for /healthz and the log).
- `records` and `lineprotocol`: contract messages to line protocol, by pure functions.
- `influxql`: reading stored data back; `warm_start`: rebuilding state from it at start;
  `inventory`: the fleet inventory as `nodes` points for the map, retiring removed nodes.
- `deadletter`: batches the database refused as data, kept for an operator.

The measurements, tags and fields themselves are the ground's (`schemas.storage`).
"""
