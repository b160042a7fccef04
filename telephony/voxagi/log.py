"""Loggers that import `logging` only when a message is written: the AGI script starts per call.

On Python 3.14 `import logging` costs about 25 ms of the script's start-up; the happy path of a
cached prompt logs nothing, so it should not pay for it.
"""

from __future__ import annotations

from typing import Any

_config: dict[str, Any] | None = None


def configure(**basic_config: Any) -> None:
    """Apply `logging.basicConfig(**basic_config)` the first time anything is logged."""
    global _config
    _config = basic_config


class LazyLogger:
    """Stands in for `logging.getLogger(name)` until a method of it is first used."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attr: str) -> Any:
        """Import and configure logging, then delegate to the real logger."""
        import logging

        global _config
        if _config is not None:
            config, _config = _config, None
            logging.basicConfig(**config)
        return getattr(logging.getLogger(self.name), attr)


def get_logger(name: str) -> LazyLogger:
    """A logger for a module of the AGI script."""
    return LazyLogger(name)
