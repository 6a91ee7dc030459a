"""The chain: HQ → regions → stores (any depth), staff bound to a node with a role, scoping."""
