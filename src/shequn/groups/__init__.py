"""Customer groups (社群): the store's group matrix, memberships, invitations, recruitment rewards."""
