"""Voxline: a self-hosted XTTS voice server."""
