"""Fixtures of the API's unit tests (defined in ``api_support``)."""

from tests.unit.api_service.api_support import api, make_api

__all__ = ["api", "make_api"]
