"""The AudioSocket listener and its control API, started and stopped together."""

from __future__ import annotations

import logging
import threading

from telephony.voxagi.config import Settings

from .control import ControlServer
from .server import AudioSocketServer, CallRegistry

logger = logging.getLogger(__name__)


class AudioSocketService:
    """Both servers in background threads; ports 0 pick free ones (see the *_address fields)."""

    def __init__(
        self,
        settings: Settings,
        audio: tuple[str, int],
        control: tuple[str, int],
        prebuffer_ms: int = 60,
    ) -> None:
        self.registry = CallRegistry()
        self.audio = AudioSocketServer(audio, settings, self.registry, prebuffer_ms)
        self.control = ControlServer(control, self.registry)
        self.audio_address = self.audio.server_address[:2]
        self.control_address = self.control.server_address[:2]

    def start(self) -> None:
        """Serve both in daemon threads."""
        for server, name in ((self.audio, "audiosocket"), (self.control, "as-control")):
            threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
        logger.info(
            "AudioSocket on %s:%s, control API on http://%s:%s",
            *self.audio_address,
            *self.control_address,
        )

    def stop(self) -> None:
        """Stop accepting, hang up every call, close the sockets."""
        self.control.stop()
        self.audio.stop()
