"""The built wheel, installed alone in a clean virtual environment."""
