"""What every envnet process needs at run time, above the contract and below everything else.

- `logs`: structured logging (logfmt or JSON, UTC timestamps with offset, secrets redacted).
- `configfile`: TOML files overlaid with ENVNET_* variables into typed structs.
- `toml_text`: TOML text for the config files envnet writes for its own processes.
- `endpoints`: broker URLs (`mqtt://`, `mqtts://`).
- `backoff`: capped exponential backoff with full jitter.
- `failover`: which broker of an ordered list to use, and when to go back to the first.
- `version`: the installed envnet version.
- `progress`: progress of a long run, as one line of text, on a terminal or at the end.
"""
