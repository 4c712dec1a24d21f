"""The REST API: a Litestar app built on the container's services."""

from entrypoints.http.app import create_app

__all__ = ["create_app"]
