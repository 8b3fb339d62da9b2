"""Stand-ins for the hardware and the city, for tests, the bench and the demo.

- `signals`, `physical`, `noise`: seeded, time-parameterised signal models.
- `drivers` and `fake_i2c`: simulated sensors and a simulated I2C bus, registered with the
  edge as entry points (pyproject.toml); `devices`, `uart_pty` and `modbus_slave` serve the
  sensors' own bytes on pseudo-terminals.
- `perturbations`: the scripted steps, ramps, spikes, stuck readings and dropouts of the
  simulated drivers (their `perturbations` option).
- `node_kinds`: the kinds of simulated node; `fleet`: the built-in Suzhou fleet;
  `fleet_file`: a fleet described in a TOML file; `replay_csv`: real hourly station data
  replayed.
- `link_proxy`: a TCP forwarder between one node and its broker that can cut the link.
- `scenario`: scenario files (nodes, replays, scripted events, expected alerts), played
  through real agents and the real aggregator and judged.
- `local_stack`: development tooling that starts real mosquitto, influxd and
  victoria-metrics on free ports, for the tests, the bench and `envnet demo`.
"""

__all__ = [
    "devices",
    "drivers",
    "fake_i2c",
    "fleet",
    "fleet_file",
    "link_proxy",
    "local_stack",
    "node_kinds",
    "perturbations",
    "replay_csv",
    "scenario",
]
