"""Sensor calibration, applied centrally by sensor serial number.

- `book`: calibration records, the book that finds them, and the arithmetic. Pure.
- `file`: the calibration TOML file into a book.
- `batch`: a batch of readings under the book: what is stored, and what is evaluated. Pure.
- `recalibrate`: rewriting stored history with the book as it is now.
"""
