"""The chaos benchmark: the real stack under a steady FindImage, AddImage and RemoveImage load
while one of its processes is killed, one scenario at a time (``python -m benchmarks.chaos``)."""
