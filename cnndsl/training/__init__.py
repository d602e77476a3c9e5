"""Phase 4: the shared runner that trains any spec (`cnndsl train`)."""
