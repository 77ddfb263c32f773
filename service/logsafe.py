"""Keep access tokens out of logs: browsers must put them in ``?token=``, and servers log request paths."""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"(token=)[^&\s\"']+")
LOGGERS = ("uvicorn.access", "uvicorn.error")


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = _TOKEN.sub(r"\1[redacted]", message), None
        return True


def install() -> None:
    for name in LOGGERS:
        logging.getLogger(name).addFilter(RedactTokens())
