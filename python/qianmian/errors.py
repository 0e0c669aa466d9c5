"""Typed errors of the qianmian client.

A server reply with ``ok: false`` raises the subclass of :class:`ServerError` named by its
``error.code`` (SPEC §5, §8); a call that got no reply in time raises :class:`Timeout`; a reply
that is not a msgpack map raises :class:`ProtocolError`. Bad arguments to a client method raise
``ValueError`` / ``TypeError`` before anything is sent.
"""


class QianmianError(Exception):
    """Base class of every error this package raises on purpose."""


class Timeout(QianmianError, TimeoutError):
    """No reply within the client's timeout. Whether the server ran the request is unknown, so
    it is never retried; the connection was rebuilt, so a late reply cannot be mistaken for the
    answer to the next request."""


class ProtocolError(QianmianError):
    """The reply could not be decoded as one msgpack map."""


class ServerError(QianmianError):
    """A reply with ``ok: false``: ``code`` and ``message`` from its ``error`` map; ``reply``
    is the whole decoded reply."""

    code = "internal"

    def __init__(self, code, message, reply=None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.reply = reply if reply is not None else {}


class BadRequest(ServerError, ValueError):
    """``bad_request``: the request is malformed; the message names the field. Never retried."""

    code = "bad_request"


InvalidArgument = BadRequest  # the name C++ callers know from qm::Status


class UnknownOp(ServerError):
    """``unknown_op``: the server has no such op."""

    code = "unknown_op"


class NotFound(ServerError, LookupError):
    """``not_found``: e.g. ``reload`` of a version that does not exist."""

    code = "not_found"


class Overloaded(ServerError):
    """``overloaded``: the server ran nothing (full or standing queue); safe to send again."""

    code = "overloaded"


class DeadlineExceeded(ServerError):
    """``deadline_exceeded``: the server did not start (or finish) the request within its
    ``deadline_ms``."""

    code = "deadline_exceeded"


class Unavailable(ServerError):
    """``unavailable``: draining, store unreachable, or a version failing verification."""

    code = "unavailable"


class Internal(ServerError):
    """``internal``: a bug on the server side."""

    code = "internal"


class Unauthenticated(ServerError):
    """``unauthenticated`` (SPEC §8)."""

    code = "unauthenticated"


class Forbidden(ServerError):
    """``forbidden`` (SPEC §8)."""

    code = "forbidden"


class Conflict(ServerError):
    """``conflict`` (SPEC §8): a concurrent change won."""

    code = "conflict"


ERRORS_BY_CODE = {
    cls.code: cls
    for cls in (BadRequest, UnknownOp, NotFound, Overloaded, DeadlineExceeded, Unavailable, Internal,
                Unauthenticated, Forbidden, Conflict)
}


def error_from_reply(reply):
    """The :class:`ServerError` subclass instance for a failed reply map (a code this package
    does not know becomes a plain ServerError carrying that code)."""
    error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
    code = str(error.get("code", "internal"))
    message = str(error.get("message", ""))
    cls = ERRORS_BY_CODE.get(code, ServerError)
    return cls(code, message, reply)
