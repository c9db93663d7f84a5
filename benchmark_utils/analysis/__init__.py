"""Reading benchopt result tables: targets, curves, tuning."""
