"""Flows: what happens across apps — the sweep list today; the reactions to an order's life
(paid, closed, refunded, picked up, team failed) and to a member joining as they move here
(ADR 0013, docs/architecture-graph.md §4). Above every domain app, below the UIs."""
