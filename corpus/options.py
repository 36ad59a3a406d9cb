"""The corpus stage's own options: limits that keep one odd file from taking over a build.

The defaults are declared here once; `assistant/settings.py` exposes them as settings (with help
text and environment variables) and `index/options.py` passes them through to a build.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_FILE_MB = 20.0  # a 20 MB text file is ~20k chunks, about an hour of embedding on a laptop CPU


@dataclass(frozen=True)
class LoadOptions:
    max_file_mb: float = MAX_FILE_MB  # larger files are skipped with a reason; 0 means no limit

    @property
    def max_file_bytes(self) -> int | None:
        return int(self.max_file_mb * 1024 * 1024) if self.max_file_mb > 0 else None
