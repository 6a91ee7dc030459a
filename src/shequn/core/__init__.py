"""Cross-cutting pieces every app uses: money, time, errors, audit log, idempotency."""
