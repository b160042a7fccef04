"""Deadline scheduling pieces: measured costs, admission by predicted lateness, batch rows.

The scheduler itself is `voxline.scheduler.Scheduler`; these modules are its pure decisions.
"""
