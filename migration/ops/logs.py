"""Structured logs: one JSON object per line, with the fields the toolkit attaches
(`entity`, `operation`, `key`, `policy`, `error` on a failed dual-write).

`configure()` installs it on the root logger; `migrate` does so when
`MIGRATE_JSON_LOGS=1`, and an application may call it itself."""

from __future__ import annotations

import datetime as dt
import json
import logging

FIELDS = ("entity", "operation", "key", "policy", "error")


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
               "level": record.levelname.lower(), "logger": record.name,
               "message": record.getMessage()}
        out.update({name: getattr(record, name) for name in FIELDS if hasattr(record, name)})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure(level: int = logging.INFO) -> logging.Handler:
    """Log JSON lines to standard error from the root logger; returns the handler."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(root.level or level, level))
    return handler
