"""gateway.log's text lines are exactly what logging.Formatter makes of TEXT_FORMAT."""

from __future__ import annotations

import logging
import sys

from proxy.logsetup import TEXT_FORMAT, TextFormatter


def _records():
    yield logging.LogRecord("proxy.access", logging.INFO, "x.py", 1, "%s model=%s status=%d", ("/v1/chat/completions", "m", 200), None)
    yield logging.LogRecord("proxy", logging.WARNING, "x.py", 1, "plain 100%% text", (), None)
    yield logging.LogRecord("proxy", logging.WARNING, "x.py", 1, "no args 100% text", None, None)
    try:
        raise ValueError("boom")
    except ValueError:
        yield logging.LogRecord("proxy", logging.ERROR, "x.py", 1, "failed %s", ("here",), sys.exc_info())
    record = logging.LogRecord("proxy.access", logging.INFO, "x.py", 1, "stack", (), None)
    record.stack_info = "Stack (most recent call last):\n  here"
    yield record
    late = logging.LogRecord("proxy.access", logging.INFO, "x.py", 1, "a second later", (), None)
    late.created += 1.0
    yield late


def test_text_lines_equal_the_standard_formatter():
    for fmt in (TEXT_FORMAT, TEXT_FORMAT.replace("%(name)s:", "%(name)s [worker 2]:"), "%(levelname)s %(message)s"):
        ours, standard = TextFormatter(fmt), logging.Formatter(fmt)
        for record in _records():
            expected = standard.format(record)
            record.exc_text = None  # as a fresh record: each formatter caches its own
            assert ours.format(record) == expected
