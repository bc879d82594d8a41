"""The `nexus-async` command, built on the SDK itself.

    nexus-async serve                      run the local Nexus batch server
    nexus-async demo                       the whole product, end to end, offline
    nexus-async jobs list|get|create|cancel|delete|wait|logs [--follow]
    nexus-async datasets create|list|get|delete
    nexus-async webhooks create|list|get|delete|test

One module per concern: `_app` (flags, the client, errors and exit statuses), `_jobs`,
`_datasets`, `_webhooks` (their command handlers, which return exit statuses),
`_render` (JSON and tables), `_serve` and `_demo`. Rich and the server are imported
inside the commands that need them, and `import nexus_async` never imports this package.
"""

from ._app import main

__all__ = ["main"]
