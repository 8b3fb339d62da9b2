"""The standards engine: stored readings in, observations and alert transitions out. Pure.

Every clock is a parameter; nothing here does I/O.

- `windows`: event-time windows (1 h, daily, 8 h and MDA8, noise day and night), and
  `window_closing`, which closes a node's windows in its own clock when no newer reading does.
- `sensor_health`: is each reading believable (range, flatline, spikes, optical PM in fog).
- `liveness`: nodes and quantities that stopped reporting.
- `rules/`: one module per family of standards: `air` (GB 3095 limits and the HJ 633 AQI),
  `noise` (GB 3096), `point` (GB 14554 odour, GB 3838 water, WHO bloom levels).
- `evaluator`: runs the windows, health checks and rules over a stored batch.
- `observations` and `lifecycle`: what a rule observed, and the alert lifecycle (pending,
  firing, hysteresis, renotify, acknowledgement, late and suspect lanes).
- `settings` and `event_time`: agg.toml's [alerts] section, composed of each part's own
  settings struct (declared in the part), and the civil clock and lateness the parts share.

The limits and calculators themselves are the ground's (`schemas.standards`).
"""
