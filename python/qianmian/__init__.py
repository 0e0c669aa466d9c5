"""qianmian: the Python side of the qianmian recommendation engine.

- :class:`Client`: every op of the wire protocol (SPEC §5) over one reused ZeroMQ socket, with
  timeouts, typed errors (:mod:`qianmian.errors`) and optional retries.
- :mod:`qianmian.data`: a version's manifest and ranker input contract, and the decision-log,
  event and effect-report exports, as numpy arrays.

Runtime dependencies: python3-zmq and python3-msgpack (numpy for :mod:`qianmian.data` only).
"""

from .client import OPS, Client, backoff_ms, retryable
from .errors import (BadRequest, Conflict, DeadlineExceeded, Forbidden, Internal, InvalidArgument, NotFound,
                     Overloaded, ProtocolError, QianmianError, ServerError, Timeout, Unauthenticated, Unavailable,
                     UnknownOp)

__version__ = "0.1.0"

__all__ = [
    "OPS", "Client", "backoff_ms", "retryable", "BadRequest", "Conflict", "DeadlineExceeded", "Forbidden",
    "Internal", "InvalidArgument", "NotFound", "Overloaded", "ProtocolError", "QianmianError", "ServerError",
    "Timeout", "Unauthenticated", "Unavailable", "UnknownOp"
]
