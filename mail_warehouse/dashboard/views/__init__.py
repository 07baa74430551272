"""The dashboard's pages, one module per page; `common` holds what they share."""
