"""Catalog and stock (S side): suppliers, products with their pyramid role, SKUs, tiered prices,
per-store stock with adjustments and transfers."""
