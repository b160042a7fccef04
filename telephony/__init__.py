"""The telephony bridge: AGI script, FastAGI and AudioSocket servers (HTTP to Voxline only)."""
