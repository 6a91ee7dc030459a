"""Member-facing pages (H5): group feeds of product cards, product, cart, checkout, payment,
pickup code, orders and refunds; and the pushing of product cards into groups."""
