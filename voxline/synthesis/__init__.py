"""The transport-free synthesis core: parse, front end, plan, render, and domain errors.

Every door (HTTP routes, realtime sessions, telephony through HTTP) sits above this package
and maps its domain errors to its own protocol; nothing here imports Flask or a door.
"""
