"""Request-level refusals, each with its HTTP status, a machine-readable code and a message."""

from __future__ import annotations

__all__ = ["RequestRefusedError"]


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
