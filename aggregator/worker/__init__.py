"""The process that hosts the standards engine, and the engine's durable state.

- `process`: the worker process, which answers the service's requests (blocking, no network
  I/O); `__main__` is its entry point (`python -m aggregator.worker FD`).
- `client`: the service's handle on it (bounded requests in flight; a batch's ack waits for
  its evaluation); `readback`: what the service reads back from InfluxDB for it at start.
- `protocol`: the frames and messages between the two, imported by both.
- `alerting`: the engine, liveness and the alert book together, fed what was stored and heard.
- `event_clock`: the clock of the alert logic, the wall clock or a scenario's scaled one
  (agg.toml [clock]).
- `state_store`: alert tracks in SQLite, saved row by row before a change is published.
"""
