"""Delivery: the outbox, the transports (SMTP pool, .eml files) and the sending worker."""
