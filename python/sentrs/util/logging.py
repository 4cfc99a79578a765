"""Logging helpers of the reference: a handler that keeps progress bars intact, and a coloured console setup."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["LoggingHandler", "install_logger"]

_NOTICE = 25  # between INFO and WARNING; registered as "NOTICE" by install_logger


class LoggingHandler(logging.Handler):
    """Writes records through ``tqdm.write``, so log lines do not break a running progress bar."""

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)

    def emit(self, record: logging.LogRecord) -> None:
        import tqdm

        try:
            tqdm.tqdm.write(self.format(record))
            self.flush()
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception:
            self.handleError(record)


def install_logger(
    given_logger: logging.Logger, level: int = logging.WARNING, fmt: str = "%(levelname)s:%(name)s:%(message)s"
) -> None:
    """Configures ``given_logger`` for a coloured console at ``level`` with ``fmt``, and adds the ``NOTICE`` level
    (``logger.notice(...)``).

    Raises:
        ImportError: ``coloredlogs`` is not installed.
    """
    try:
        import coloredlogs
    except ImportError as exc:
        raise ImportError("install_logger needs coloredlogs: pip install coloredlogs") from exc

    logging.addLevelName(_NOTICE, "NOTICE")
    if not hasattr(logging.Logger, "notice"):

        def notice(self: logging.Logger, message: object, *args: Any, **kwargs: Any) -> None:
            if self.isEnabledFor(_NOTICE):
                self._log(_NOTICE, message, args, **kwargs)

        logging.Logger.notice = notice  # type: ignore[attr-defined]

    level_styles = {
        **coloredlogs.DEFAULT_LEVEL_STYLES,
        "debug": {"color": "white", "faint": True},
        "notice": {"color": "cyan", "bold": True},
    }
    field_styles = {**coloredlogs.DEFAULT_FIELD_STYLES, "asctime": {}}
    coloredlogs.install(
        logger=given_logger,
        level=level,
        fmt=fmt,
        use_chroot=False,
        level_styles=level_styles,
        field_styles=field_styles,
    )
