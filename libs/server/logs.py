"""Structured logs: one JSON object per line on stderr, through structlog.

The interceptor binds the call's method, request id, organization and caller once per call
(structlog contextvars); every line logged during the call, from any logger, carries them.
Standard-library loggers (`logging.getLogger(...)`) go through the same renderer, and their
`extra={"fields": {...}}` become top-level keys.
"""

from __future__ import annotations

import logging

import structlog


def _service_name(service: str):
    def add(logger, method_name, event_dict):
        event_dict.setdefault("service", service)
        return event_dict
    return add


def _lift_fields(logger, method_name, event_dict):
    record = event_dict.get("_record")
    fields = getattr(record, "fields", None) if record is not None else None
    if isinstance(fields, dict):
        for key, value in fields.items():
            event_dict.setdefault(key, value)
    return event_dict


def configure_logging(service: str, level: str = "INFO", stream=None) -> None:
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        _service_name(service),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _lift_fields],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(default=str)],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
