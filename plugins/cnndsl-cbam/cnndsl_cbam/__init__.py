"""CBAM as a cnndsl plugin: `entries` (the registry entry, no torch) and `layers` (the torch module)."""
