"""The edge agent that runs on each node: sensors in, a durable journal, MQTT out.

Where to find:
- **a driver**: `drivers/` (one module per sensor: `pms5003`, `sds011`, `modbus_sensor`,
  `bme280`, `ads1115`; the interface in `drivers.base`, names in `drivers.registry`; drivers
  of other packages, such as the simulators', come in as entry points: `drivers.plugins`).
- **the journal**: `journal` (SQLite, WAL: every reading is committed before it is published
  and deleted only when the aggregator's ack names its batch and journal).
- the statistics of each interval: `sampler` and `stats`; the MQTT link: `link`; the loop
  that ties them: `agent`; running it under systemd: `runtime` and `watchdog`.
- a technician's checks: `check`, `broker_probe`, `sensor_probe`.
"""

__all__ = ["agent", "check", "clock", "config", "drivers", "journal", "runtime"]
