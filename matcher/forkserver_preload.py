"""What the extraction forkserver imports before it forks anything (``matcher/extractor.py``):
the extraction code, once, and the request to die with the replica that started it."""

from matcher import features  # noqa: F401  (imported for the forks to share)
from matcher.lifeline import die_with_parent

die_with_parent()
