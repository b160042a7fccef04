"""Voxline's test suite.

A regular package on purpose: nemo-text-processing installs a top-level `tests` package into
site-packages, which would otherwise win over this folder (a namespace package) on import.
"""
