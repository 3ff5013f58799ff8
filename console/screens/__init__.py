"""The console's screens: thin layers that load data in thread workers and lay out widgets."""
