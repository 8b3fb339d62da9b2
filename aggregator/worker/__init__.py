"""The process that hosts the standards engine, and the engine's durable state.

- `process`: the worker process and the service's handle on it (bounded requests in flight;
  a batch's ack waits for its evaluation); `__main__` is the worker process's entry point
  (`python -m aggregator.worker FD`).
- `alerting`: the engine, liveness and the alert book together, fed what was stored and heard.
- `event_clock`: the clock of the alert logic, the wall clock or a scenario's scaled one
  (agg.toml [clock]).
- `state_store`: alert tracks in SQLite, saved row by row before a change is published.
"""
