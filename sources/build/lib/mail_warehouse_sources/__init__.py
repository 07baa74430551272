"""dlt sources of the three systems (Clang/Deployteq over SFTP, Spotler Mail+, Directo) and the SFTP transport."""
