"""Helpers that run a real Asterisk 22 from a Debian sid chroot for tests and measurements."""
