"""Load tests and benchmarks; run them, never import them from the application."""
