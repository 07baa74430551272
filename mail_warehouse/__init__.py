"""mail_warehouse: the application that composes the steps (load, build, publish, export, the scheduled run).

The loaders (dlt sources) live in `mail_warehouse_sources` (sources/, a distribution of its own); the demo world
and the stand-in servers in `mail_warehouse_demo` (the `demo` extra), which the runtime never needs.
"""
