"""Request-level refusals, each with its HTTP status, a machine-readable code and a message.

Domain errors that refuse a whole request become a :class:`RequestRefusedError` here, and
nowhere else: the routes answer every refusal the same way (``Ingest.serve``).
"""

from __future__ import annotations

from tracking_common.iglu import RegistryUnavailableError

__all__ = ["RequestRefusedError", "registry_unavailable"]


class RequestRefusedError(Exception):
    """The whole request is refused (nothing in it was accepted)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        """The JSON answer."""
        return {"error": {"code": self.code, "message": self.message}}


def registry_unavailable(
    error: RegistryUnavailableError, *, retry_after_s: int
) -> RequestRefusedError:
    """503 with ``Retry-After``: the schemas could not be resolved now, through no fault of the
    events, so the client retries the request (nothing of it was published)."""
    return RequestRefusedError(
        503,
        "schema_registry_unavailable",
        f"the schemas of these events cannot be resolved now ({error.reason}); retry later",
        headers={"retry-after": str(retry_after_s)},
    )
