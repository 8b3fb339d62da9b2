"""The process that hosts the standards engine, and the engine's durable state.

- `process`: the worker process and the service's handle on it (bounded requests in flight;
  a batch's ack waits for its evaluation).
- `alerting`: the engine, liveness and the alert book together, fed what was stored and heard.
- `state_store`: alert tracks in SQLite, saved row by row before a change is published.
"""
