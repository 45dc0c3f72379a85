"""Protocol emulators of real audit clients, for tests, demos and benchmarks."""
