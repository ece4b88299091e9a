"""The SSE accounting on its own: whatever way the upstream cuts its bytes, the client gets the
same stream and the log the same text and usage."""

from __future__ import annotations

import json

import pytest

from proxy.accounting.exchange import Exchange
from proxy.api.streaming import _StreamAccounting


def event(obj: dict) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


WORDS = ["Hello", " wor", "ld", " \u00e9t\u00e9 \\n", " </script>"]
UPSTREAM = b"".join(
    [event({"id": "c", "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}], "usage": None}) for w in WORDS]
    + [event({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": None}),
       event({"id": "c", "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}}),
       b": keep-alive comment\n\n", b"data: [DONE]\n\n"]
)


def relay(strip: bool, sizes: int) -> tuple[bytes, Exchange, str]:
    ex = Exchange(endpoint="/v1/chat/completions")
    acct = _StreamAccounting(ex, strip_usage=strip)
    out = b"".join(acct.feed(UPSTREAM[i:i + sizes]) for i in range(0, len(UPSTREAM), sizes)) + acct.flush()
    return out, ex, "".join(acct.text)


@pytest.mark.parametrize("sizes", [1, 7, 64, len(UPSTREAM)])
def test_usage_requested_passes_byte_for_byte(sizes):
    out, ex, text = relay(strip=False, sizes=sizes)
    assert out == UPSTREAM
    assert ex.usage.total_tokens == 12 and text == "".join(WORDS)


@pytest.mark.parametrize("sizes", [1, 7, 64, len(UPSTREAM)])
def test_usage_we_asked_for_is_taken_out_again(sizes):
    out, ex, text = relay(strip=True, sizes=sizes)
    expected = UPSTREAM.replace(b',"usage":null', b"")
    usage_event = event({"id": "c", "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}})
    assert out == expected.replace(usage_event, b"")
    assert b"usage" not in out and out.endswith(b"data: [DONE]\n\n")
    assert ex.usage.completion_tokens == 5 and ex.first_token_at is not None and text.startswith("Hello world")


def test_last_line_without_newline_is_forwarded():
    ex = Exchange(endpoint="/v1/chat/completions")
    acct = _StreamAccounting(ex, strip_usage=True)
    assert acct.feed(b"data: [DO") == b""
    assert acct.flush() == b"data: [DO"


def test_odd_upstream_chunks_are_forwarded_and_never_raise():
    """A chunk nested too deeply for the parser, usage the size of 1e999, choices of the wrong
    shape: forwarded as they came, the accounting takes what it can."""
    deep = b"data: {\"choices\": " + b"[" * 100_000 + b"]" * 100_000 + b"}\n\n"
    odd = (event({"choices": "nope", "usage": {"prompt_tokens": 1e999, "completion_tokens": "x"}})
           + event({"choices": [None, 3, {"delta": {"tool_calls": [None, {"function": "f"}, {"index": "0"}]}}]})
           + event({"choices": [{"index": 0, "delta": {"reasoning": "thinking", "content": "ok"}}]}))
    ex = Exchange(endpoint="/v1/chat/completions")
    acct = _StreamAccounting(ex, strip_usage=False)
    assert acct.feed(deep + odd) == deep + odd
    acct.finish()
    assert ex.response_text == "ok" and ex.extra_output_chars == len("thinking")
    assert (ex.usage.prompt_tokens, ex.usage.completion_tokens) == (0, 0)
