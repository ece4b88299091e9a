"""Turn a finished Exchange into its one log row, its access-log line, and hook callbacks."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]

from ..errors import CLIENT_CLOSED, SHUTDOWN_CANCELLED
from ..logdb.record import RequestRecord, utc_timestamp
from ..logdb.writer import LogWriter
from ..state import RequestHook
from .exchange import Exchange
from .pricing import NO_USAGE
from .tags import metadata_json
from .usage import estimate, prompt_text

access_log = logging.getLogger("proxy.access")
log = logging.getLogger("proxy")


class RequestLogger:
    def __init__(
        self,
        writer: LogWriter,
        hooks: Sequence[RequestHook],
        *,
        store_prompts: bool,
        max_stored_chars: int,
        json_logs: bool = False,
    ) -> None:
        self.writer = writer
        self.hooks = hooks
        self.store_prompts = store_prompts
        self.max_stored_chars = max_stored_chars
        self.json_logs = json_logs

    def price(self, ex: Exchange) -> None:
        """Fill usage (estimating when the upstream gave none) and cost, once. Never raises:
        a request the accounting cannot price is logged at cost 0 (and the error at ERROR)."""
        if ex.cost is not None:
            return
        try:
            self._price(ex)
        except Exception:
            log.exception("cannot price request %s; logged at cost 0", ex.request_id)
            ex.cost, ex.cost_status = 0.0, NO_USAGE

    @staticmethod
    def _price(ex: Exchange) -> None:
        # Once a provider took the request it charges for the prompt, whether or not an answer
        # (or its usage) came back: estimate what the upstream did not report, so a client
        # that hangs up early pays like one that waited.
        if ex.usage is None and ex.billable and ex.body is not None and ex.target is not None:
            ex.usage = estimate(prompt_text(ex.body), ex.response_text or "", ex.extra_output_chars)
        if ex.usage is None or ex.target is None:
            ex.cost, ex.cost_status = 0.0, NO_USAGE
            return
        u = ex.usage
        ex.cost, ex.cost_status = ex.target.price.cost(u.prompt_tokens, u.completion_tokens, u.cached_tokens)

    def finish(self, ex: Exchange) -> RequestRecord | None:
        """Log `ex` exactly once; later calls are no-ops.

        Never raises: when the row cannot be built a fallback row (status, model, key, error)
        is logged instead, and the hooks run whatever happened, because they release what
        the request holds (a parallel-request slot, the in-flight gauge).
        """
        if ex.logged:
            return None
        ex.logged = True
        record: RequestRecord | None = None
        try:
            if ex.finished_at is None:
                ex.finished_at = time.perf_counter()
            self.price(ex)
            record = self._record(ex)
        except Exception:
            log.exception("cannot build the log row of request %s; logging a fallback row", ex.request_id)
            record = self._fallback(ex)
        try:
            self.writer.submit(record)
            self._access_line(ex, record)
        except Exception:
            log.exception("cannot log request %s", ex.request_id)
        finally:
            for hook in self.hooks:
                try:
                    hook.complete(ex, record)
                except Exception:
                    log.exception("request hook %s failed", type(hook).__name__)
        return record

    @staticmethod
    def _fallback(ex: Exchange) -> RequestRecord:
        """The row of a request whose full row could not be built: only fields that cannot fail."""
        principal = ex.principal
        return RequestRecord(
            timestamp=utc_timestamp(ex.started_wall),
            request_id=ex.request_id,
            endpoint=ex.endpoint,
            model=ex.model if isinstance(ex.model, str) else "",
            response=ex.error_message if isinstance(ex.error_message, str) else None,
            cost=ex.cost if isinstance(ex.cost, float) and ex.cost == ex.cost else 0.0,
            latency=round(ex.latency, 6),
            status_code=ex.status or 500,
            stream=int(bool(ex.stream)),
            key_hash=principal.key_hash if principal else None,
            key_alias=principal.key_alias if principal else None,
            team_id=principal.team_id if principal else None,
            error_type=ex.error_type,
            cost_status=ex.cost_status if isinstance(ex.cost_status, str) else NO_USAGE,
            client_ip=ex.client_ip,
        )

    def _record(self, ex: Exchange) -> RequestRecord:
        u = ex.usage
        target = ex.target
        principal = ex.principal
        body = ex.body or {}
        # A client that hung up, or a stream cut by shutdown, saw text: keep what was streamed.
        partial = ex.status == CLIENT_CLOSED or (ex.error_type == SHUTDOWN_CANCELLED and ex.response_text)
        if ex.status >= 400 and not partial:
            response = ex.error_message
        else:
            response = ex.response_text
        # Positional, in RequestRecord's field order (_RECORD_FIELDS pins it): matching 31
        # keywords cost four times the construction itself.
        return RequestRecord(
            utc_timestamp(ex.started_wall),  # timestamp
            ex.request_id,  # request_id
            ex.endpoint,  # endpoint
            ex.model,  # model
            ex.user_id,  # user_id
            self._stored_messages(body) if self.store_prompts else None,  # messages
            self._cap(response) if (self.store_prompts or ex.status >= 400) else None,  # response
            u.prompt_tokens if u else 0,  # prompt_tokens
            u.completion_tokens if u else 0,  # completion_tokens
            u.total_tokens if u else 0,  # total_tokens
            ex.cost or 0.0,  # cost
            round(ex.latency, 6),  # latency
            ex.status,  # status_code
            int(ex.stream),  # stream
            principal.key_hash if principal else None,  # key_hash
            principal.key_alias if principal else None,  # key_alias
            principal.team_id if principal else None,  # team_id
            target.provider if target else None,  # provider
            target.deployment.litellm_params.model if target else None,  # upstream_model
            target.public_api_base if target else None,  # api_base
            _round(ex.time_to_first_token),  # time_to_first_token
            _round(ex.upstream_latency),  # upstream_latency
            ex.error_type,  # error_type
            u.cached_tokens if u else 0,  # cached_tokens
            u.reasoning_tokens if u else 0,  # reasoning_tokens
            int(bool(u and u.estimated)),  # tokens_estimated
            ex.cost_status or NO_USAGE,  # cost_status
            ex.client_ip,  # client_ip
            metadata_json(body, ex.tags_header),  # metadata
            ex.model_group,  # model_group
            ex.attempts,  # attempts
        )

    def _stored_messages(self, body: dict) -> str | None:
        for key in ("messages", "prompt", "input"):
            if key in body:
                return self._cap(_json(body[key]))
        return None

    def _cap(self, text: str | None) -> str | None:
        if text is None or len(text) <= self.max_stored_chars:
            return text
        return text[: self.max_stored_chars] + "…[truncated]"

    def _access_line(self, ex: Exchange, record: RequestRecord) -> None:
        status = ex.status
        level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
        if not access_log.isEnabledFor(level):
            return
        error = f" error={ex.error_type}: {one_line(ex.error_message or '')}" if ex.error_type else ""
        # Formatted here, once, rather than by logging's %-operator: the same text.
        access_log.log(
            level,
            f"{ex.endpoint} model={one_line(ex.model)} status={int(status)} latency={record.latency:.3f}s "
            f"cost={record.cost:.6f} tokens={int(record.total_tokens)} stream={'true' if ex.stream else 'false'} "
            f"key={one_line(record.key_alias or '-')} request_id={ex.request_id}{error}",
            extra={"fields": self._json_fields(ex, record)} if self.json_logs else None,
        )

    @staticmethod
    def _json_fields(ex: Exchange, record: RequestRecord) -> dict[str, object]:
        return {
            "endpoint": ex.endpoint, "model": ex.model, "status": ex.status,
            "latency": record.latency, "cost": record.cost, "tokens": record.total_tokens,
            "stream": ex.stream, "key_alias": record.key_alias, "request_id": ex.request_id,
            "error_type": ex.error_type,
        }


#: RequestRecord's fields in the order _record passes them.
_RECORD_FIELDS = (
    "timestamp",
    "request_id",
    "endpoint",
    "model",
    "user_id",
    "messages",
    "response",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost",
    "latency",
    "status_code",
    "stream",
    "key_hash",
    "key_alias",
    "team_id",
    "provider",
    "upstream_model",
    "api_base",
    "time_to_first_token",
    "upstream_latency",
    "error_type",
    "cached_tokens",
    "reasoning_tokens",
    "tokens_estimated",
    "cost_status",
    "client_ip",
    "metadata",
    "model_group",
    "attempts",
)
assert _RECORD_FIELDS == tuple(f.name for f in dataclasses.fields(RequestRecord)), "update _record"


def one_line(text: str) -> str:
    """Client text as it may appear in a text log line: a model name with a newline in it
    must not forge a second line (grep would believe it)."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


#: json.dumps(value, ensure_ascii=False, default=str) without building an encoder per call
#: (its text exactly; no circular-reference check: parsed JSON has no cycles).
_STORED_TEXT = c_make_encoder(None, str, encode_basestring, None, ": ", ", ", False, False, True)


def _json(value: object) -> str | None:
    """Client JSON as stored text; None for what cannot be written back (nested too deeply)."""
    try:
        if isinstance(value, str):
            return encode_basestring(value)
        return "".join(_STORED_TEXT(value, 0))
    except (ValueError, RecursionError):
        return None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
