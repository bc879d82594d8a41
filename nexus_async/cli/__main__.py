"""`python -m nexus_async.cli`: the `nexus-async` command."""

import sys

from ._app import main

sys.exit(main())
