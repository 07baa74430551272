"""Two-way sync: the warehouse's contacts to the mail platforms (`contacts`), opt-outs back to the ERP
(`directo_consent`). Both off in `warehouse run` unless `[sync]` switches them on."""


class SyncError(RuntimeError):
    """A sync that cannot go on; the message says why and what to do."""


def table_exists(con, qualified_name: str) -> bool:
    """Whether `schema.table` exists in the warehouse `con` is connected to."""
    schema, table = qualified_name.split(".")
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = $s and table_name = $t",
            {"s": schema, "t": table},
        ).fetchone()[0]
    )
