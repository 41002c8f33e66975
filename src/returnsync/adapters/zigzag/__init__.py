"""zigzag package."""
