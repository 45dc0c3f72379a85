"""auditrecv: receive illumos and Linux audit streams, index them as ECS documents."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("auditrecv")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
