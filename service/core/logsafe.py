"""Keep access tokens out of logs: browsers must put them in ``?token=``, and servers log request paths."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

# A query parameter as it appears in a logged URL. Its name is compared after percent-decoding, because the
# server decodes it too: ``?tok%65n=`` is read as ``token`` and must be hidden as well.
_PARAM = re.compile(r"(?P<lead>^|[?&;\s])(?P<name>[^=&\s\"'?#]+)=(?P<value>[^&\s\"'#]*)")
SECRET_PARAMS = frozenset({"token"})
LOGGERS = ("uvicorn.access", "uvicorn.error")


def _mask(m: re.Match[str]) -> str:
    if unquote_plus(m["name"]).strip().lower() in SECRET_PARAMS:
        return f"{m['lead']}{m['name']}=[redacted]"
    return m.group(0)


def redact(message: str) -> str:
    return _PARAM.sub(_mask, message) if "=" in message else message


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install() -> None:
    for name in LOGGERS:
        logging.getLogger(name).addFilter(RedactTokens())
