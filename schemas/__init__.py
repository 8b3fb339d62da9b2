"""The ground floor: what every part of envnet shares, importing nothing of envnet's above.

- The contract between edge and aggregator (README.md beside this file): `messages` (the
  message types), `codec` (encode and decode them, with errors that say what was wrong),
  `topics`, `quantities` (the vocabulary: quantities, units, bounds), `gas_units`; the JSON
  Schemas in json/ are generated from the types (`python -m schemas.export`).
- `storage`: what is stored in InfluxDB (measurements, tags, fields), shared by the
  aggregator's record builders, the Grafana dashboards and the README.
- `standards`: the Chinese standards and the WHO bloom levels as pure tables and calculators
  (GB 3095, HJ 633 AQI, GB 3096, GB 14554, GB 3838, TLI), cited from docs/standards.md.
- `runtime`: logging, configuration files, endpoints, backoff, the version.
"""

__all__ = [
    "codec",
    "gas_units",
    "messages",
    "quantities",
    "runtime",
    "standards",
    "storage",
    "topics",
]
