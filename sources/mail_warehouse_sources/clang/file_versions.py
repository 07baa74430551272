"""Each Clang file's rows of one version: the source appends rows that carry their file's version
(`source_file`, `file_loaded_at`) and merges one record per file into `loaded_files`. Into an append-only
destination (dlt's `filesystem`) that is the whole story: a reader keeps the rows whose `file_loaded_at` equals
their file's latest `loaded_at`. Into a SQL destination, `remove_superseded_rows` removes the other versions
right after the load (`warehouse load clang` does, in mail_warehouse/loads.py), so:
- nothing new: nothing downloaded, nothing added;
- a file delivered again with the same content: downloaded, recognised by its checksum, nothing added;
- a file delivered again with other content: its rows are replaced;
- a file gone from the server: its rows stay.
"""

from __future__ import annotations

import dlt

DATA_TABLES = ("activities", "broadcasts", "rejected_rows")


def remove_superseded_rows(pipeline: dlt.Pipeline) -> None:
    """Keep only rows of the version of each file that `loaded_files` holds."""
    with pipeline.sql_client() as client:
        tables = client.execute_sql(
            "select table_name from information_schema.tables where table_schema = %s", pipeline.dataset_name
        )
        assert tables is not None  # dlt answers None only for a statement that returns no rows, never a select
        existing = {row[0] for row in tables}
        if "loaded_files" not in existing:
            return
        files = client.make_qualified_table_name("loaded_files")
        for table in DATA_TABLES:
            if table not in existing:
                continue
            rows = client.make_qualified_table_name(table)
            client.execute_sql(f"""delete from {rows} t using {files} f
                                   where t.source_file = f.source_file and t.file_loaded_at <> f.loaded_at""")
