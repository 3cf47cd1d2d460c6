"""The ``cloudreco`` command: the local stack, the processes it runs, and administration."""
