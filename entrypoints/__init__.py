"""Entrypoints: the dependency-injector container, the HTTP API and the command line."""
