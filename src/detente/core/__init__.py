"""Pure rules and formats: no I/O, no imports from store, node, web or cli."""
