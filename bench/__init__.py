"""Load benchmark for a running gateway: `python -m bench.run --help`."""
