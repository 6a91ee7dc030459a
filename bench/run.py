"""`make bench`: runs every benchmark under bench/ and prints one JSON line per measurement."""
