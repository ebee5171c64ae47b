"""One RPC or database call of the aquests interface, ending as the Response its callback
receives.

Runs the queued BackendCall in the fetchall() loop's pools within the session's
timeout; a reached server's error (QueryError: a failed query, wrong
credentials, a gRPC status) becomes a 5xx (or mapped) Response carrying the
driver's message, a connection failure the 7xx Response of its ClientError.
The scheduling is `aquests.py`'s.
"""

from __future__ import annotations

from typing import Any

from qactuar.client.aquests_response import AquestsRequest, AquestsResponse, HeaderDict
from qactuar.client.backends.base import BackendCall, Pools, QueryError, run_call
from qactuar.client.errors import ClientError, UnexpectedError


class BackendResponse(AquestsResponse):
    """An RPC or database answer: `server`, `dbname`, `params` too, and `content` is the
    driver's result for a database (the body bytes for gRPC)."""

    server: str
    dbname: str | None
    params: tuple[Any, ...]
    trailers: list[tuple[str, str]]

    @property
    def content(self) -> Any:
        if self.meta.get("req_method") == "grpc":
            return self._body
        return self.data


async def backend_exchange(request: Any, session: Any, pools: Pools) -> AquestsResponse:
    """Run `request.backend`; never raises for the call's own failure."""
    call: BackendCall = request.backend
    sent = AquestsRequest(call.method, call.url, HeaderDict(request.headers), None)
    logger_ = session.logger
    try:
        outcome = await run_call(call, pools, float(session.timeout))
    except QueryError as error:
        answered = error.outcome
        response = BackendResponse(
            request.meta, sent, status_code=error.status_code, reason=error.reason,
            version=answered.version if answered else None,
            body=answered.body if answered else b"",
            header_pairs=answered.header_pairs if answered else None, error=error,
            logger=logger_)  # type: ignore[arg-type]
        response.trailers = answered.trailers if answered else []
    except ClientError as error:
        response = BackendResponse.failed(request.meta, sent, error, logger_)
        response.trailers = []
    except Exception as error:  # a bug of ours: 701, with the traceback for the report
        if hasattr(logger_, "trace"):
            logger_.trace()
        failure = UnexpectedError(f"{type(error).__name__}: {error}")
        response = BackendResponse.failed(request.meta, sent, failure, logger_)
        response.trailers = []
    else:
        response = BackendResponse(request.meta, sent, status_code=outcome.status_code,
                                   reason=outcome.reason, version=outcome.version,
                                   body=outcome.body, header_pairs=outcome.header_pairs,
                                   logger=logger_)
        response.set_data(outcome.data)
        response.trailers = outcome.trailers
    response.server = call.server
    response.dbname = call.dbname
    response.params = call.params
    return response
