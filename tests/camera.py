"""A fake camera for the browser tests: Chromium's fake capture device fed with a photo."""

from pathlib import Path

import cv2
import numpy as np

FRAMES = 4  # Chromium loops the file; a few identical frames make a still scene


def fake_camera(jpeg: bytes, path: Path) -> list[str]:
    """Write ``jpeg`` as a Y4M video (planar 4:2:0, as Chromium reads it) at ``path``; the
    flags that make Chromium's camera show it, with no permission prompt."""
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    height, width = img.shape[:2]
    planes = cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420).tobytes()  # needs even sides
    with path.open("wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(FRAMES):
            video.write(b"FRAME\n" + planes)
    return ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={path}"]
