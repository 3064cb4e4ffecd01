"""align layer."""
