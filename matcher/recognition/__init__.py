"""Image cloud-recognition core: local features, a per-channel hnswlib index, voting and
geometric verification. One module per stage, each a set of functions over arrays:

target (AddImage), ``targets``: SIFT (``sift``) on the target resized to a few "as seen in a
    photo" sizes, RootSIFT and the shipped PCA (``pca``), then a fixed budget of descriptors
    spread over the image and the scales, ranked by how often synthetic views of the target
    re-find them (``views``); the same views rate the target (``level``).
query (FindImage), ``query``: SIFT on the photo downscaled by ``query_scale``, to at most
    ``query_max_side`` on its long side, RootSIFT, PCA.
search, ``index``: knn in one hnswlib index per channel, votes per image (``votes``), then for
    the best candidates (``verify``) the correspondences that agree on one rotation and scale
    (``geometry``), made one-to-one, a homography (USAC_MAGSAC), its inliers that also agree
    in orientation and size, and a plausible outline (``outline``); a candidate whose knn
    correspondences fail is re-matched against its own entries. Entries other catalog images
    have too (a masthead, ``sharing``) are marked when added, and a match needs inliers off
    them.
``config`` holds the settings production uses.
"""

from matcher.recognition.config import CFG, Config
from matcher.recognition.features import Features, Match
from matcher.recognition.index import ChannelIndex
from matcher.recognition.level import rate_level
from matcher.recognition.outline import plausible
from matcher.recognition.pca import PCA, load_pca
from matcher.recognition.query import extract_query, query_side
from matcher.recognition.targets import extract_target

__all__ = [
    "CFG",
    "PCA",
    "ChannelIndex",
    "Config",
    "Features",
    "Match",
    "extract_query",
    "extract_target",
    "load_pca",
    "plausible",
    "query_side",
    "rate_level",
]
