"""AudioSocket streaming: Asterisk connects per call; a control API says text on each call."""
