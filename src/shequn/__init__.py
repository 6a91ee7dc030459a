"""Shequn (社群): community-based new retail — groups, commerce, referrals and the demand river."""

__version__ = "0.1.0"
