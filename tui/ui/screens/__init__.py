"""Dashboard screens (the main screen with overview and session tabs, compare, history, replay)."""
