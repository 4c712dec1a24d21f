"""Webhook delivery over HTTP: Standard Webhooks signatures, the destination (SSRF) check, and
the sender that posts one attempt and tells what came of it."""
