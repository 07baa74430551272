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


def table_or_empty(con, qualified_name: str, columns: dict[str, str]) -> str:
    """`schema.table` to read from, or, before anything wrote it (a first dry run records nothing), an empty
    relation with the `columns` (name -> type) a query reads of it."""
    if table_exists(con, qualified_name):
        return qualified_name
    return "(select " + ", ".join(f"null::{kind} as {name}" for name, kind in columns.items()) + " where false)"
