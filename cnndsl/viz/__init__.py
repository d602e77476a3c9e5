"""Pictures of networks: what a trained network learned (`cnndsl show`)."""
