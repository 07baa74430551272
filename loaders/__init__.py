"""mail_warehouse: loaders (dlt) for Clang/Deployteq, Spotler Mail+ and Directo, and the `warehouse` CLI."""
