"""The lab scripts here `import recognition`: that is the service's matcher/recognition.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from matcher import recognition as _recognition  # noqa: E402

sys.modules[__name__] = _recognition
