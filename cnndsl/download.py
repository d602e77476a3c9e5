"""Checked downloads: a file arrives as `NAME.part`, is verified, then renamed into place.

A partial, oversized or corrupt download is never left where a reader would take it for the real file.
Datasets (data/sources.py) and pretrained weights (pretrained.py) both come this way.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import Callable
from pathlib import Path

# Larger than any file we download (VGG-19's weights are 548 MB): a server that sends more is refused.
MAX_BYTES = 2 << 30


def digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, target: Path, verify: Callable[[Path], str | None], timeout: float = 30.0,
             limit: int = MAX_BYTES) -> None:
    """Fetches `url` into `target`; `verify(part)` returns a problem (the file is then dropped) or None.

    Raises OSError or ValueError with the reason; the target is untouched unless everything went well.
    """
    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            announced = response.headers.get("Content-Length")
            if announced and announced.isdigit() and int(announced) > limit:
                raise ValueError(f"the server announces {int(announced):,} bytes, more than {limit:,} bytes")
            size = 0
            for chunk in iter(lambda: response.read(1 << 20), b""):
                size += len(chunk)
                if size > limit:
                    raise ValueError(f"the server sent more than {limit:,} bytes")
                out.write(chunk)
        problem = verify(part)
        if problem:
            raise ValueError(problem)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
