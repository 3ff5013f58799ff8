"""Reusable widgets and formatting for the console."""
