"""Vendor-neutral failures raised by the shared machinery.

Each dialect maps these (and engine.errors.*) to its own code in its own error
table. Keep this list short: it is the whole vocabulary shared by all dialects.
"""


class GatewayError(Exception):
    pass


class BodyTooLargeError(GatewayError):
    """The request body exceeds the dialect's max_body_bytes (checked while streaming)."""


class BodyTimeoutError(GatewayError):
    """No byte of the request body arrived for [server] body_timeout_s: the client stalled mid-body."""


class BadJSONError(GatewayError):
    """A JSON body that is not JSON, or nests deeper than core.body.MAX_JSON_DEPTH."""


class BadBase64Error(GatewayError):
    """An image field is not strict base64."""


class ImageTooLargeBytesError(GatewayError):
    """The image bytes exceed the dialect's max_image_bytes."""


class UnsupportedFormatError(GatewayError):
    """The bytes are an image format this dialect does not accept (e.g. GIF)."""


class FetchError(GatewayError):
    """An image URL could not be fetched. `reason` says why (for logs, never for the client)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class FetchTimeoutError(FetchError):
    pass


class FetchForbiddenError(FetchError):
    """Scheme not http/https, or the host resolves to a private/loopback/link-local/metadata address."""


class FetchTooLargeError(FetchError):
    pass


class EngineBusyError(GatewayError):
    """The bounded engine queue is full: answer the vendor's rate-limit error at once."""


class RateLimitedError(GatewayError):
    """A credential exceeded its configured request rate."""


class RouteNotFoundError(GatewayError):
    """No route for this path/action; answered in the dialect that owns the path."""


class ShuttingDownError(GatewayError):
    """The server is draining; new requests are refused."""


class ReplayStoreUnavailableError(ShuttingDownError):
    """The shared record of single-use signatures and nonces (core/replay.py: Redis, or a
    locked SQLite file) did not answer: a replay cannot be ruled out, so the request is refused,
    never accepted. A ShuttingDownError, so that each dialect answers it as it answers a draining
    gateway, with its own retryable temporary-failure error: a moment later, or another instance,
    may answer."""
