"""Stand-ins for the hardware and the city, for tests, the bench and the demo.

- `signals`, `physical`, `noise`: seeded, time-parameterised signal models.
- `drivers` and `fake_i2c`: simulated sensors and a simulated I2C bus, registered with the
  edge as entry points (pyproject.toml); `devices`, `uart_pty` and `modbus_slave` serve the
  sensors' own bytes on pseudo-terminals.
- `perturbations`: the scripted steps, ramps, spikes, stuck readings and dropouts of the
  simulated drivers (their `perturbations` option).
- `fleet`: the simulated Suzhou fleet; `replay_csv`: real hourly station data replayed.
- `link_proxy`: a TCP forwarder between one node and its broker that can cut the link.
- `local_stack`: development tooling that starts real mosquitto, influxd and
  victoria-metrics on free ports, for the tests, the bench and `envnet demo`.
"""

__all__ = [
    "devices",
    "drivers",
    "fake_i2c",
    "fleet",
    "link_proxy",
    "local_stack",
    "perturbations",
    "replay_csv",
]
