"""``cloudreco``: run the stack or one of its processes, administer users, channels and app
keys, rebuild features, and use a catalog through the API (add, export, find, list, stats)."""

from __future__ import annotations

import click

from cloudreco.cli import catalog, export, importer, operate, reindex


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Open image cloud recognition.

    The operator's commands (run, gateway, matcher, migrate, reshard, reindex, user,
    channel, key) work on the stack and its database. The user's commands (add, export,
    find, list, stats) call the API at --url or $CLOUDRECO_URL with --username /
    --secretkey or $CLOUDRECO_USERNAME / $CLOUDRECO_SECRETKEY.
    """


for _command in (*operate.COMMANDS, reindex.reindex, importer.add, export.export,
                 *catalog.COMMANDS):
    main.add_command(_command)
