"""Device simulators: real-protocol endpoints that stand in for instruments in tests, demos and OQ runs."""
