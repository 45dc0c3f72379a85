"""Receivers: sans-I/O protocol cores and thin asyncio servers."""
