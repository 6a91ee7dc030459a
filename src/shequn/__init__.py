"""Shequn (社群): community-based new retail — groups, commerce, referrals and the demand river."""

__version__ = "0.1.0"

# Celery finds its app as `shequn.celery_app` (``celery -A shequn``); Django loads it at start-up
# (core.apps.CoreConfig.ready).


def __getattr__(name: str) -> object:
    if name == "celery_app":
        from .celery import app

        return app
    raise AttributeError(name)
