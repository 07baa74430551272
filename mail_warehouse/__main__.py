import sys

from mail_warehouse.cli import main

sys.exit(main())
