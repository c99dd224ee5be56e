"""Reusable dashboard widgets: each owns its behaviour, screens only compose them."""
