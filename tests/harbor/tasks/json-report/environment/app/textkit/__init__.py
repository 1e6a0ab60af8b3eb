"""A small text toolkit."""
