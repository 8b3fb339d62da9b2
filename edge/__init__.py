"""The edge agent: drivers, interval statistics, the durable journal and the MQTT link."""
