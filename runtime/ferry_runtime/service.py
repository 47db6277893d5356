"""Request handling shared by the Lambda handler and the HTTP server: parse a request of MLflow's scoring protocol,
run the model, encode the answer, log one line. Neither caller has its own copy of any of this.

Request (a JSON object, as `mlflow models serve` takes it):
    {"dataframe_split": {"columns": [...], "data": [[...], ...]}}   (optionally "index")
    {"dataframe_records": [{"col": value, ...}, ...]}
    {"instances": [...]}       TF-serving row format
    {"inputs": ...}            TF-serving columnar format
  exactly one of these, plus an optional "params" object passed to `predict(..., params=...)`.
Answer: {"predictions": ..., "model": NAME, "version": VERSION}, status 200.
Errors: 400 {"error_code": "BAD_REQUEST", "message": "<short reason>", ...};
        500 {"error_code": "INTERNAL_ERROR", "message": "...", "error_id": "<id>", ...} with the trace in the log only.
"""
from __future__ import annotations

import functools
import json
import time
import traceback
import uuid
from dataclasses import dataclass
from typing import Any

from . import logs
from .loader import LoadedModel

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
MAX_REASON = 300


@dataclass
class Response:
    status: int
    body: dict

    def text(self) -> str:
        return dumps(self.body)


class BadRequest(Exception):
    pass


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, separators=(",", ":"))


def _json_default(obj: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, pd.DataFrame):
        return obj.to_dict(orient="records")
    if isinstance(obj, pd.Series):
        return obj.tolist()
    if isinstance(obj, (pd.Timestamp,)) or hasattr(obj, "isoformat"):
        return obj.isoformat()
    if isinstance(obj, (bytes, bytearray)):
        import base64
        return base64.b64encode(obj).decode("ascii")
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def decode_body(raw: bytes | str | None) -> dict:
    """The JSON object of a request body; BadRequest when it is empty, not JSON or not an object."""
    if raw is None or (isinstance(raw, (bytes, str)) and not raw.strip()):
        raise BadRequest("empty request body; expected a JSON object with one of: " + ", ".join(FORMATS))
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BadRequest(f"request body is not valid JSON ({err})") from None
    return payload


def parse_request(payload: Any, input_schema: Any = None) -> tuple[Any, dict | None]:
    """Model input and params of a scoring-protocol request, converted the way `mlflow models serve` converts it
    (MLflow's own parsers, with the model's input schema when it has a signature)."""
    if not isinstance(payload, dict):
        raise BadRequest(f"request must be a JSON object with one of: {', '.join(FORMATS)}; "
                         f"got a JSON {_json_type(payload)}")
    present = [k for k in FORMATS if k in payload]
    unknown = sorted(k for k in payload if k not in FORMATS and k != "params")
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(map(repr, unknown))}; expected one of: {', '.join(FORMATS)}"
                         " and optionally 'params'")
    if len(present) != 1:
        raise BadRequest(f"request must have exactly one of: {', '.join(FORMATS)}; "
                         + (f"got {', '.join(present)}" if present else "got none"))
    params = payload.get("params")
    if params is not None and not isinstance(params, dict):
        raise BadRequest(f"'params' must be a JSON object; got a JSON {_json_type(params)}")
    key = present[0]
    value = payload[key]

    from mlflow.utils.proto_json_utils import dataframe_from_parsed_json, parse_tf_serving_input

    try:
        if key in ("dataframe_split", "dataframe_records"):
            if key == "dataframe_split" and isinstance(value, dict) and not isinstance(value.get("data"), list):
                raise BadRequest("'dataframe_split' needs a 'data' list of rows (and usually 'columns')")
            data = dataframe_from_parsed_json(value, pandas_orient=key[len("dataframe_"):], schema=None)
            data = cast_to_schema(data, input_schema)
        else:
            if value is None or (isinstance(value, (list, dict)) and len(value) == 0):
                raise BadRequest(f"'{key}' is empty")
            data = parse_tf_serving_input({key: value}, schema=input_schema)
    except BadRequest:
        raise
    except Exception as err:  # MLflow's parsers raise MlflowException, pandas raises ValueError/TypeError
        raise BadRequest(f"'{key}' could not be read: {_short(err)}") from None
    return data, params


def cast_to_schema(frame: Any, schema: Any) -> Any:
    """MLflow's `cast_df_types_according_to_schema`, skipped when it could only be a no-op: every column of the
    schema is a plain numeric or boolean scalar and already has the dtype the cast would give it. Anything else
    (missing columns, other dtypes, strings, binary, datetimes, arrays, objects) goes through MLflow's cast."""
    if schema is None:
        return frame
    from mlflow.types.schema import DataType
    from mlflow.utils.proto_json_utils import cast_df_types_according_to_schema

    if schema.has_input_names() and not schema.is_tensor_spec():
        columns = frame.columns
        fast = True
        for name, spec in zip(schema.input_names(), schema.input_types()):
            if not (isinstance(spec, DataType) and spec in _plain_types() and name in columns
                    and frame[name].dtype == spec.to_pandas()):
                fast = False
                break
        if fast:
            return frame
    return cast_df_types_according_to_schema(frame, schema)


@functools.lru_cache(maxsize=1)
def _plain_types() -> frozenset:
    from mlflow.types.schema import DataType

    return frozenset({DataType.boolean, DataType.integer, DataType.long, DataType.float, DataType.double})


def invoke(loaded: LoadedModel, payload: Any, request_id: str, source: str, started: float | None = None,
           extra_log: dict | None = None) -> Response:
    """Handle one scoring request against a loaded model. `payload` is the parsed JSON, or the raw body (bytes or
    str) to be decoded here. Never raises for a bad request or a failing model: those become 400 and 500."""
    started = time.perf_counter() if started is None else started
    rows = None
    predict_ms = None
    error_id = None
    try:
        if isinstance(payload, (bytes, bytearray, str)) or payload is None:
            payload = decode_body(payload)
        data, params = parse_request(payload, loaded.input_schema)
        rows = _rows(data)
        t_predict = time.perf_counter()
        try:
            raw = loaded.model.predict(data, params=params) if params else loaded.model.predict(data)
        except Exception as err:
            if _is_input_rejection(err):
                raise BadRequest(f"input does not match the model's signature: {_short(err)}") from None
            raise
        finally:
            predict_ms = (time.perf_counter() - t_predict) * 1000
        response = Response(200, {"predictions": _jsonable(raw), "model": loaded.name, "version": loaded.version})
    except BadRequest as err:
        response = error_response(400, "BAD_REQUEST", _short(err), loaded.name, loaded.version)
    except Exception as err:
        error_id = new_error_id()
        logs.error("model_error", model=loaded.name, version=loaded.version, request_id=request_id,
                   error_id=error_id, error_type=type(err).__name__, error=str(err)[:2000],
                   traceback=traceback.format_exc())
        response = error_response(500, "INTERNAL_ERROR", f"the model failed on this request; error id {error_id}",
                                  loaded.name, loaded.version, error_id=error_id)
    logs.info("invocation", model=loaded.name, version=loaded.version, request_id=request_id, source=source,
              status=response.status, rows=rows, error_id=error_id,
              reason=response.body.get("message") if response.status == 400 else None,
              predict_ms=None if predict_ms is None else round(predict_ms, 3),
              latency_ms=round((time.perf_counter() - started) * 1000, 3), **(extra_log or {}))
    return response


def error_response(status: int, code: str, message: str, model: str | None, version: str | None,
                   error_id: str | None = None) -> Response:
    body = {"error_code": code, "message": message, "model": model, "version": version}
    if error_id:
        body["error_id"] = error_id
    return Response(status, body)


def new_error_id() -> str:
    return uuid.uuid4().hex[:16]


def _jsonable(raw: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(raw, pd.DataFrame):
        return raw.to_dict(orient="records")
    if isinstance(raw, pd.Series):
        return raw.tolist()
    if isinstance(raw, np.ndarray):
        return raw.tolist()
    return raw


def _rows(data: Any) -> int | None:
    try:
        if isinstance(data, dict):
            first = next(iter(data.values()), None)
            return None if first is None else len(first)
        return len(data)
    except TypeError:
        return None


def _is_input_rejection(err: Exception) -> bool:
    """MLflow's schema enforcement in PyFuncModel.predict rejects input with INVALID_PARAMETER_VALUE or BAD_REQUEST
    (what `mlflow models serve` answers with 400); any other exception is the model's own failure."""
    from mlflow.exceptions import MlflowException

    return isinstance(err, MlflowException) and err.error_code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST")


def _short(err: BaseException | str) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 1] + "…"


def _json_type(value: Any) -> str:
    return {list: "array", dict: "object", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")
