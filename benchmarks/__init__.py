"""metabridge benchmarks: ``python -m benchmarks [NAME ...] [-- options]`` (see ``benchmarks/__main__.py``)."""
