"""Pipecat TTS over Voxline's session API (`pip install pipecat-ai`).

    from voxline_client.pipecat import VoxlineTTSService
    tts = VoxlineTTSService(base_url="http://127.0.0.1:8020", voice="anna")
    pipeline = Pipeline([transport.input(), stt, user_agg, llm, tts, transport.output(), ...])

One websocket session per service. Each Pipecat turn is one Voxline context (its context id):
the LLM's text goes out as `input_text.append` as it comes (token aggregation by default: the
server cuts segments itself), the end of the turn as `input_text.end`, and a user interruption
sends `context.cancel`, after which the server sends none of that turn's audio. Audio is s16le
PCM at the pipeline's output rate (the server resamples).

Word timestamps: each `speech.words` goes to Pipecat's `add_word_timestamps` as the words of
the text this service sent (so "$5" stays "$5", not "five dollars"), each timed at its END. Pipecat
pushes a word's `TTSTextFrame` when playout reaches that time, so after a barge-in the assistant
context holds the words whose last sample was played: the server's own rule for the words heard
(`context.cancelled`). Word frames instead of whole sentences: `push_text_frames=False`.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncGenerator
from typing import Any

from pipecat.frames.frames import ErrorFrame, Frame, StartFrame, TTSAudioRawFrame, TTSStoppedFrame
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TextAggregationMode, WebsocketTTSService
from pipecat.transcriptions.language import Language
from websockets.protocol import State

from voxline_client import _realtime as proto

logger = logging.getLogger(__name__)


class VoxlineTTSService(WebsocketTTSService):
    """Voxline as an interruptible Pipecat websocket TTS (context per turn, cancel on barge-in)."""

    Settings = TTSSettings
    _settings: Settings

    def __init__(
        self,
        *,
        base_url: str = "http://127.0.0.1:8020",
        api_key: str | None = None,
        voice: str | None = None,
        language: Language | str | None = None,
        speed: float | None = None,
        max_buffer_delay_ms: float | None = None,
        sample_rate: int | None = None,
        text_aggregation_mode: TextAggregationMode | None = TextAggregationMode.TOKEN,
        **kwargs: Any,
    ) -> None:
        settings = self.Settings(model=None, voice=voice, language=None)
        super().__init__(
            text_aggregation_mode=text_aggregation_mode,
            push_text_frames=False,
            sample_rate=sample_rate,
            push_start_frame=True,
            settings=settings,
            **kwargs,
        )
        if language is not None:
            self._settings.language = self.language_to_service_language(language)
        self._url = proto.stream_url(base_url)
        self._headers = proto.auth_headers(api_key)
        self._speed = speed
        self._max_buffer_delay_ms = max_buffer_delay_ms
        self._receive_task = None
        self._texts: dict[str, proto.ContextText] = {}  # what each open context was sent

    def can_generate_metrics(self) -> bool:
        return True

    def language_to_service_language(self, language: Language | str) -> str | None:
        """Voxline's language codes are the base ones (`en`), except `zh-cn`."""
        code = str(language.value if isinstance(language, Language) else language).lower()
        return code if code == "zh-cn" else code.split("-")[0]

    # Connection -------------------------------------------------------------------------------

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self._connect()

    async def _connect(self) -> None:
        await super()._connect()
        await self._connect_websocket()
        if self._websocket and not self._receive_task:
            self._receive_task = self.create_task(self._receive_task_handler(self._report_error))

    async def _disconnect(self) -> None:
        await super()._disconnect()
        if self._receive_task:
            await self.cancel_task(self._receive_task)
            self._receive_task = None
        await self._disconnect_websocket()

    async def _connect_websocket(self) -> None:
        try:
            if self._websocket and self._websocket.state is State.OPEN:
                return
            self._websocket = await self._websocket_connect(
                self._url, additional_headers=self._headers
            )
            await self._send(self._session_update())
            await self._call_event_handler("on_connected")
        except Exception as exc:
            self._websocket = None
            await self.push_error(error_msg=f"voxline: cannot connect: {exc}", exception=exc)
            await self._call_event_handler("on_connection_error", f"{exc}")

    async def _disconnect_websocket(self) -> None:
        try:
            await self.stop_all_metrics()
            if self._websocket:
                await self._websocket.close()
        except Exception as exc:
            logger.debug("%s: closing the session failed: %s", self, exc)
        finally:
            self._websocket = None
            await self._call_event_handler("on_disconnected")

    def _session_update(self) -> dict[str, Any]:
        return proto.session_update(
            voice=self._settings.voice or None,
            language=self._settings.language or None,
            sample_rate=self.sample_rate or None,
            speed=self._speed,
            max_buffer_delay_ms=self._max_buffer_delay_ms,
            word_timestamps=True,
        )

    async def _send(self, message: dict[str, Any]) -> None:
        if not self._websocket:
            raise ConnectionError("voxline: not connected")
        await self._websocket.send(json.dumps(message))

    @property
    def _is_open(self) -> bool:
        return self._websocket is not None and self._websocket.state is State.OPEN

    async def _update_settings(self, delta: TTSSettings) -> dict[str, Any]:
        """New voice or language: later turns (new contexts) speak with it."""
        changed = await super()._update_settings(delta)
        if changed and self._is_open:
            await self._send(self._session_update())
        return changed

    # Turns ------------------------------------------------------------------------------------

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        """Send one piece of the turn's text; its audio arrives on the receive task."""
        try:
            if not self._websocket or self._websocket.state is State.CLOSED:
                await self._connect()
            self._texts.setdefault(context_id, proto.ContextText()).append(text)
            await self._send(proto.append(context_id, text))
            await self.start_tts_usage_metrics(text)
            yield None
        except Exception as exc:
            yield ErrorFrame(error=f"voxline: sending text failed: {exc}")
            yield TTSStoppedFrame(context_id=context_id)

    async def flush_audio(self, context_id: str | None = None) -> None:
        """The turn's text is complete: the server finishes it and says `speech.audio.done`."""
        context_id = context_id or self.get_active_audio_context_id()
        if context_id and self._is_open:
            await self._send(proto.end(context_id))

    async def on_audio_context_interrupted(self, context_id: str) -> None:
        """Barge-in: the server stops this turn at once and sends none of its audio after."""
        await self.stop_all_metrics()
        self._texts.pop(context_id, None)
        if context_id and self._is_open:  # a closed session has dropped the context already
            await self._send(proto.cancel(context_id))
        await super().on_audio_context_interrupted(context_id)

    # Receiving --------------------------------------------------------------------------------

    async def _receive_messages(self) -> None:
        while True:
            async for raw in self._websocket:
                await self._handle(json.loads(raw))
            # The server closes idle sessions; open a new one for the next turn.
            logger.debug("%s: session closed by the server, reconnecting", self)
            await self._connect_websocket()

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        context_id = message.get("context_id")
        if kind in ("speech.audio.done", "context.cancelled"):  # the context's last message
            self._texts.pop(context_id, None)
        if kind == "error":
            await self._handle_error(message, context_id)
        elif not context_id or not self.audio_context_available(context_id):
            return  # session messages, and what is left of an interrupted turn
        elif kind == "speech.audio.delta":
            await self.stop_ttfb_metrics()
            await self.append_to_audio_context(
                context_id,
                TTSAudioRawFrame(
                    audio=base64.b64decode(message["audio"]),
                    sample_rate=self.sample_rate,
                    num_channels=1,
                    context_id=context_id,
                ),
            )
        elif kind == "speech.words":
            await self._add_words(context_id, message["words"])
        elif kind == "speech.audio.done":
            await self.append_to_audio_context(context_id, TTSStoppedFrame(context_id=context_id))
            await self.remove_audio_context(context_id)

    async def _add_words(self, context_id: str, words: list[dict[str, Any]]) -> None:
        """Words as this service wrote them, timed at their end (see the module docstring)."""
        text = self._texts.get(context_id)
        if text is None:
            return
        timed = [(s.word, s.end_s) for s in text.spoken(words) if s.word]
        if timed:
            await self.add_word_timestamps(timed, context_id)

    async def _handle_error(self, message: dict[str, Any], context_id: str | None) -> None:
        await self.push_error(error_msg=f"voxline: {proto.error_text(message)}")
        if context_id and self.audio_context_available(context_id):
            self._texts.pop(context_id, None)
            await self.append_to_audio_context(context_id, TTSStoppedFrame(context_id=context_id))
            await self.remove_audio_context(context_id)
