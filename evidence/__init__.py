"""Court evidence packages: signed, timestamped, verifiable offline (docs/evidence.md)."""
