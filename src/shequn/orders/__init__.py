"""Orders: placed inside a group, paid, picked up at the store; every order records its source."""
