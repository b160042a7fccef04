"""What every synthesis needs at run time: engine, voices, scheduler, caches, metrics and the
startup state, in one typed object the app factory makes and hands to each door."""

from __future__ import annotations

import logging
import threading
import time

from voxline.audio import LevelPolicy, parse_level_policy
from voxline.engines.base import Engine, EngineError, SynthesisParams
from voxline.engines.select import choose_engine, load_engine
from voxline.engines.xtts_weights import describe_weights, preflight
from voxline.phrase_cache import PhraseCache
from voxline.scheduler import Scheduler
from voxline.settings import Settings
from voxline.synthesis.errors import NotReady
from voxline.synthesis.frontend import FrontEnd, LexiconStore, Normalizers
from voxline.synthesis.metrics import Metrics
from voxline.voices.bank import VoiceBank
from voxline.voices.manage import VoiceManager

logger = logging.getLogger(__name__)


class Services:
    """Loads the engine and voices once (in the background), then serves them."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.level: LevelPolicy = parse_level_policy(settings.level)
        self.scheduler = Scheduler(
            settings.max_queue, settings.queue_timeout_s, settings.max_active,
            settings.max_batch, settings.max_ahead_s, target_load=settings.target_load,
            first_audio_s=settings.first_audio_s,
        )
        self.phrases = PhraseCache(settings.cache_dir / "phrases",
                                   int(settings.phrase_cache_mb * 1e6))
        self.voice_manager = VoiceManager(settings.speakers_dir, settings.cache_dir / "uploads",
                                          settings.upload_max_seconds)
        self.metrics = Metrics(self)
        self.frontend = FrontEnd(Normalizers(settings.grammar_dir, settings.normalize_processes),
                                 LexiconStore(settings.lexicons_dir))
        self.defaults = SynthesisParams()
        self.engine = engine
        self.voices: VoiceBank | None = None
        self.state = "starting"
        self.error: str | None = None
        self.started = time.monotonic()
        self.startup_s: float | None = None
        self._ready = threading.Event()
        # Set on SIGTERM (voxline.server.drain): /ready answers 503 so load balancers stop
        # routing here, while requests already sent here are still served.
        self.draining = False
        if engine is not None:
            self.engine_name, self.engine_reason = engine.name, "injected"
        else:
            # Cheap checks run now, so a bad setting stops the worker at boot with a message.
            weights = describe_weights(settings.xtts_dir)
            self.engine_name, self.engine_reason = choose_engine(settings.engine, weights)
            if self.engine_name == "xtts":
                preflight(weights)
        logger.info("engine: %s (%s)", self.engine_name, self.engine_reason)

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def require_ready(self) -> None:
        """Raise NotReady unless the server is ready to synthesise."""
        if not self.ready:
            raise NotReady(self.state)

    def drain(self) -> None:
        """Leave the rotation: /ready answers 503 from now on; serving goes on."""
        self.draining = True
        logger.info("draining: /ready answers 503 from now on")

    def close(self, timeout: float = 5.0) -> None:
        """Stop the scheduler's workers once their work is done, waiting up to `timeout` (an
        app built and dropped inside a longer-lived process; a gunicorn worker just exits)."""
        self.scheduler.stop(timeout)

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def start(self, background: bool = True) -> None:
        """Load engine, voices and warm up; in a thread unless `background` is False."""
        if background:
            threading.Thread(target=self._load, name="voxline-load", daemon=True).start()
        else:
            self._load(raise_errors=True)

    def _load(self, raise_errors: bool = False) -> None:
        # Grammars load (compiling first where missing) while the model loads.
        self.frontend.normalizers.prepare(self.settings.normalize_languages, background=True)
        try:
            self._load_engine()
            self.voices = VoiceBank(
                self.engine, self.settings.speakers_dir, self.settings.cache_dir,
                self.settings.default_voice,
            )
            self.state = "loading voices"
            self.voices.load()
            self.state = "loading the text front end"
            self._load_frontend()
            if self.voices.default is None:
                raise EngineError("no usable voice: add a clip to the speakers folder")
            if self.settings.warmup:
                self.state = "warming up"
                default = self.voices.get(self.voices.default)
                self.scheduler.run("warmup", lambda: self.engine.warmup(default))
        except Exception as exc:
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            logger.exception("startup failed")
            if raise_errors:
                raise
            return
        self.startup_s = time.monotonic() - self.started
        self.state = "ready"
        self._ready.set()
        logger.info("ready in %.1f s", self.startup_s)

    def _load_frontend(self) -> None:
        """Lexicons, then wait for the grammars `start` began loading with the model.

        Every grammar of `normalize_languages` is ready before the server is (a first request
        must not be read un-normalised), and none loads later: loading one holds the GIL for
        up to seconds (5.7 s for German measured), which would stall every stream."""
        failed = self.frontend.lexicons.load()
        for name, reason in failed.items():
            logger.warning("lexicon %s skipped: %s", name, reason)
        self.frontend.normalizers.wait()

    def _load_engine(self) -> None:
        if self.engine is not None:
            return
        self.state = f"loading {self.engine_name}"
        try:
            self.engine = load_engine(self.engine_name, self.settings)
        except Exception as exc:
            if self.settings.engine != "auto" or self.engine_name == "piper":
                raise
            # Auto mode promises real speech: fall back to Piper, and say why.
            logger.error("XTTS failed to load (%s); falling back to Piper", exc)
            self.engine_name = "piper"
            self.engine_reason = f"XTTS failed to load ({exc}); serving the bundled Piper voice"
            self.engine = load_engine("piper", self.settings)

    def health(self) -> dict[str, object]:
        engine_info: dict[str, object] = self.engine.info() if self.engine else {}
        voices = self.voices
        return {
            "status": self.state,
            "ready": self.ready,
            "error": self.error,
            "engine": self.engine_name,
            "engine_reason": self.engine_reason,
            **{k: v for k, v in engine_info.items() if k != "engine"},
            "voices_loaded": len(voices.names()) if voices else 0,
            "voices_failed": voices.report.failed if voices else {},
            "voices_skipped": voices.report.skipped if voices else {},
            "voices_cached": len(voices.report.cached) if voices else 0,
            "voices_computed": len(voices.report.computed) if voices else 0,
            "default_voice": voices.default if voices else None,
            "queue_depth": self.scheduler.depth,
            "busy": self.scheduler.busy,
            "startup_s": self.startup_s,
            "text_normalization": self.frontend.normalizers.status(),
            "lexicons": self.frontend.lexicons.names(),
        }

