"""Video and mask I/O, importable without the CLI."""

import os as _os

# OpenCV's bundled ffmpeg prints decoder chatter (e.g. on truncated files) straight to
# stderr; vps reports such problems itself, in one line. (vps decodes with PyAV, which is
# silent; this still quiets code that opens videos with OpenCV, such as the benchmarks.)
_os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
