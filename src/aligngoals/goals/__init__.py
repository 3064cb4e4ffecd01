"""goals layer."""
