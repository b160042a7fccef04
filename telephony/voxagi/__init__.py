"""Stdlib-only AGI logic shared by the voxline.agi script and the FastAGI server."""
