"""The fields of a request body the gateway itself relies on, checked the way OpenAI checks them.

Only what routing, streaming and accounting read is checked: `model` picks the deployment,
`stream` decides how the answer is relayed and logged, `stream_options` whether usage is
asked for, and `messages` / `prompt` / `input` are what tokens are estimated from. A wrong
type there would reach the provider and come back as its 500, or as a 200 the log misreads.
Every other field passes through untouched: providers add fields faster than we could list
them. Errors are 400 `invalid_request_error` naming the `param` in OpenAI's style
(`messages[1].role`) with OpenAI's codes (`missing_required_parameter`, `invalid_type`,
`empty_array`).
"""

from __future__ import annotations

from typing import Any

from ..errors import BadRequest

#: What each endpoint kind (api.llm.LLM_ROUTES) requires beside `model`.
_INPUT_FIELD = {"chat": "messages", "completion": "prompt", "embedding": "input"}
_TOKEN_INPUT = "a string, an array of strings, an array of integers or an array of arrays of integers"


def validate(body: dict[str, Any], kind: str) -> None:
    """Check `body` for an endpoint of `kind` ('chat', 'completion', 'embedding'); raises
    BadRequest naming the first offending param."""
    model = body.get("model")
    if model is None or model == "":
        raise BadRequest("You must provide a model parameter.", param="model",
                         code="missing_required_parameter")
    if not isinstance(model, str):
        raise _invalid_type("model", "a string", model)
    field = _INPUT_FIELD[kind]
    if field not in body:
        raise BadRequest(f"Missing required parameter: '{field}'.", param=field,
                         code="missing_required_parameter")
    if kind == "chat":
        _messages(body["messages"])
    else:
        _token_input(field, body[field])
    if kind != "embedding":
        _optional(body, "stream", bool, "a boolean")
        _optional(body, "stream_options", dict, "an object")


def _messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise _invalid_type("messages", "an array of objects", messages)
    if not messages:
        raise _empty("messages")
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _invalid_type(param, "an object", message)
        if "role" not in message:
            raise BadRequest(f"Missing required parameter: '{param}.role'.", param=f"{param}.role",
                             code="missing_required_parameter")
        if not isinstance(message["role"], str):
            raise _invalid_type(f"{param}.role", "a string", message["role"])


def _token_input(field: str, value: Any) -> None:
    """A completions `prompt` or embeddings `input`: text, texts, tokens or token lists."""
    if isinstance(value, str):
        return
    if not isinstance(value, list):
        raise _invalid_type(field, _TOKEN_INPUT, value)
    if not value:
        raise _empty(field)
    first = value[0]
    if isinstance(first, str):
        expected, check = "a string", _is_str
    elif _is_int(first):
        expected, check = "an integer", _is_int
    elif isinstance(first, list):
        expected, check = "an array of integers", _is_token_list
    else:
        raise _invalid_type(f"{field}[0]", "a string, an integer or an array of integers", first)
    for i, item in enumerate(value):
        if not check(item):
            raise _invalid_type(f"{field}[{i}]", expected, item)


def _optional(body: dict[str, Any], field: str, kind: type, expected: str) -> None:
    value = body.get(field)  # null is the same as absent, as OpenAI takes it
    if value is not None and not isinstance(value, kind):
        raise _invalid_type(field, expected, value)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_token_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_int(v) for v in value)


def _invalid_type(param: str, expected: str, value: Any) -> BadRequest:
    return BadRequest(
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _empty(param: str) -> BadRequest:
    return BadRequest(
        f"Invalid '{param}': empty array. Expected an array with minimum length 1, "
        "but got an empty array instead.",
        param=param,
        code="empty_array",
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
