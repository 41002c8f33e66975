"""Reports: pure builders (data -> rows) and renderers (rows -> xlsx / pdf)."""
