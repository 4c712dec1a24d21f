"""Pages for people: server-rendered pages over the same use cases as the API, with htmx for
partial updates and every basic flow working without JavaScript."""

from entrypoints.web.plugin import WebPages

__all__ = ["WebPages"]
