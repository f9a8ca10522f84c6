"""Allow ``python -m aiserving``."""

from aiserving.cli.main import main

raise SystemExit(main())
