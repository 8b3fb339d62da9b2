"""Sensor drivers: small classes whose `read()` returns typed samples or raises a DriverError."""
