"""khaos package."""
