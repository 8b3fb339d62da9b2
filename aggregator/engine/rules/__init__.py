"""The rules, one module per family of standards: `air`, `noise`, `point`. Pure."""
