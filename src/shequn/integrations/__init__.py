"""Adapters for the outside world (payment gateway, chat platform), in their published formats."""
