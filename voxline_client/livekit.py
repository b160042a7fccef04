"""LiveKit Agents TTS over Voxline's session API (`pip install livekit-agents`).

    from voxline_client.livekit import TTS
    session = AgentSession(tts=TTS(base_url="http://127.0.0.1:8020", voice="anna"), ...)

`stream()` opens one websocket session per stream and sends the LLM's text deltas as they come
(`input_text.append`), `flush()` as `input_text.flush`, the end of input as `input_text.end`;
closing a stream before its audio is done (an interruption) sends `context.cancel`, and the
server's `context.cancelled` ack is kept on the stream (`cancel_ack`). `synthesize()` sends the
whole text through the same API. Audio is s16le PCM at `sample_rate` (the server resamples).

Aligned transcripts (`TTSCapabilities(aligned_transcript=True)`): each `speech.words` becomes
`TimedString`s pushed to the audio emitter, which hands them out with the next audio frame, so
they travel with the audio they describe. Each is the text this stream sent (so "$5", not "five
dollars"), with the spacing before it, and the word's start and end in seconds on the segment's
audio. With `use_tts_aligned_transcript`, LiveKit's transcript synchronizer paces the transcript,
and the chat context of an interrupted reply, by these times.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from livekit.agents import (
    DEFAULT_API_CONNECT_OPTIONS,
    APIConnectionError,
    APIConnectOptions,
    APIStatusError,
    APITimeoutError,
    tts,
    utils,
)
from livekit.agents.voice.io import TimedString

from voxline_client import _realtime as proto

logger = logging.getLogger(__name__)
CANCEL_ACK_TIMEOUT_S = 0.5  # how long a closing stream waits for the server's cancel ack


class TTS(tts.TTS):
    """Voxline as a streaming LiveKit TTS: text deltas in over one websocket, audio out."""

    def __init__(
        self,
        *,
        base_url: str = "http://127.0.0.1:8020",
        api_key: str | None = None,
        voice: str | None = None,
        language: str | None = None,
        sample_rate: int = 24000,
        speed: float | None = None,
        max_buffer_delay_ms: float | None = None,
        http_session: aiohttp.ClientSession | None = None,
    ) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=True, aligned_transcript=True),
            sample_rate=sample_rate,
            num_channels=1,
        )
        self._url = proto.stream_url(base_url)
        self._headers = proto.auth_headers(api_key)
        self._update = proto.session_update(
            voice=voice,
            language=language,
            sample_rate=sample_rate,
            speed=speed,
            max_buffer_delay_ms=max_buffer_delay_ms,
            word_timestamps=True,
        )
        self._session = http_session
        self._own_session: aiohttp.ClientSession | None = None

    @property
    def model(self) -> str:
        return "voxline"

    @property
    def provider(self) -> str:
        return "voxline"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream:
        return ChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> SynthesizeStream:
        return SynthesizeStream(tts=self, conn_options=conn_options)

    async def aclose(self) -> None:
        if self._own_session is not None:
            await self._own_session.close()
            self._own_session = None

    def _http_session(self) -> aiohttp.ClientSession:
        """The given session, else the job's, else one this TTS owns (tests, scripts)."""
        if self._session is not None:
            return self._session
        with contextlib.suppress(RuntimeError):
            return utils.http_context.http_session()
        if self._own_session is None:
            self._own_session = aiohttp.ClientSession()
        return self._own_session

    @contextlib.asynccontextmanager
    async def _connect(self, timeout: float) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        """A session websocket whose settings the server has confirmed (`session.updated`)."""
        try:
            ws = await asyncio.wait_for(
                self._http_session().ws_connect(self._url, headers=self._headers, heartbeat=20),
                timeout,
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise APIStatusError(
                f"voxline refused the session: {exc.message}", status_code=exc.status
            ) from exc
        except TimeoutError as exc:
            raise APITimeoutError("voxline: connecting timed out") from exc
        except aiohttp.ClientError as exc:
            raise APIConnectionError(f"voxline: cannot connect: {exc}") from exc
        try:
            await ws.send_json(self._update)
            while (await _receive(ws, timeout))["type"] != "session.updated":
                pass
            yield ws
        finally:
            await ws.close()


async def _receive(ws: aiohttp.ClientWebSocketResponse, timeout: float | None) -> dict[str, Any]:
    """The next server message; an `error` without a context is raised here."""
    try:
        frame = await ws.receive(timeout=timeout)
    except TimeoutError as exc:
        raise APITimeoutError("voxline: no message from the server in time") from exc
    if frame.type != aiohttp.WSMsgType.TEXT:
        raise APIConnectionError(f"voxline: session closed ({frame.type.name}, {frame.extra})")
    message = json.loads(frame.data)
    if message.get("type") == "error" and not message.get("context_id"):
        raise _api_error(message)
    return message


def _api_error(message: dict[str, Any]) -> APIStatusError:
    code = (message.get("error") or {}).get("code")
    status = 503 if code == "busy" else 400
    return APIStatusError(f"voxline: {proto.error_text(message)}", status_code=status, body=message)


def _start_audio(emitter: tts.AudioEmitter, owner: TTS, *, stream: bool) -> str:
    """Initialise the emitter for one new context's pcm audio; returns the context id."""
    context_id = utils.shortuuid()
    emitter.initialize(
        request_id=context_id,
        sample_rate=owner.sample_rate,
        num_channels=1,
        mime_type="audio/pcm",
        stream=stream,
    )
    return context_id


class _ContextAudio:
    """Reads one context's messages off a session and pushes its audio and timed words to an
    emitter."""

    def __init__(
        self, ws: aiohttp.ClientWebSocketResponse, context_id: str, emitter: tts.AudioEmitter
    ) -> None:
        self.ws = ws
        self.context_id = context_id
        self.emitter = emitter
        self.text = proto.ContextText()  # what this context was sent, for its words
        self.input_open = True
        self.finished: dict[str, Any] | None = None

    async def send_text(self, text: str) -> None:
        self.text.append(text)
        await self.ws.send_json(proto.append(self.context_id, text))

    async def run(self, timeout: float) -> dict[str, Any]:
        """Push audio until `speech.audio.done`; waits are bounded once the input has ended."""
        while True:
            message = await _receive(self.ws, None if self.input_open else timeout)
            if message.get("context_id") != self.context_id:
                continue
            kind = message["type"]
            if kind == "speech.audio.delta":
                self.emitter.push(base64.b64decode(message["audio"]))
            elif kind == "speech.words":
                self._push_words(self.text.spoken(message["words"]))
            elif kind in ("speech.audio.done", "context.cancelled"):
                if kind == "speech.audio.done":  # closing punctuation and spaces, at the end
                    rest = self.text.rest(message["audio_ms"] / 1000)
                    self._push_words([rest] if rest else [])
                self.finished = message
                return message
            elif kind == "error":
                raise _api_error(message)

    def _push_words(self, stretches: list[proto.SpokenText]) -> None:
        if stretches:
            self.emitter.push_timed_transcript(
                [TimedString(s.text, start_time=s.start_s, end_time=s.end_s) for s in stretches]
            )

    async def cancel(self) -> dict[str, Any] | None:
        """Barge-in: `context.cancel`, then the server's ack (None if it did not come in time)."""
        if self.finished is not None or self.ws.closed:
            return None
        try:
            await self.ws.send_json(proto.cancel(self.context_id))
            async with asyncio.timeout(CANCEL_ACK_TIMEOUT_S):
                while True:
                    message = await _receive(self.ws, None)
                    if (
                        message.get("type") == "context.cancelled"
                        and message.get("context_id") == self.context_id
                    ):
                        return message
        except (TimeoutError, APIConnectionError, APIStatusError, ConnectionError) as exc:
            logger.debug("voxline: no cancel ack for %s: %s", self.context_id, exc)
            return None


class ChunkedStream(tts.ChunkedStream):
    """A whole text through the session API: one context, appended and ended at once."""

    def __init__(self, *, tts: TTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._tts: TTS = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        context_id = _start_audio(output_emitter, self._tts, stream=False)
        async with self._tts._connect(self._conn_options.timeout) as ws:
            audio = _ContextAudio(ws, context_id, output_emitter)
            await audio.send_text(self._input_text)
            await ws.send_json(proto.end(context_id))
            audio.input_open = False
            try:
                await audio.run(self._conn_options.timeout)
            finally:
                await asyncio.shield(audio.cancel())


class SynthesizeStream(tts.SynthesizeStream):
    """Text deltas as they come: one session and one context per stream."""

    def __init__(self, *, tts: TTS, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, conn_options=conn_options)
        self._tts: TTS = tts
        self.cancel_ack: dict[str, Any] | None = None

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        context_id = _start_audio(output_emitter, self._tts, stream=True)
        output_emitter.start_segment(segment_id=context_id)
        async with self._tts._connect(self._conn_options.timeout) as ws:
            audio = _ContextAudio(ws, context_id, output_emitter)
            sender = asyncio.create_task(self._send_text(ws, audio), name="voxline.send_text")
            try:
                await audio.run(self._conn_options.timeout)
                output_emitter.end_segment()
            finally:
                await utils.aio.gracefully_cancel(sender)
                self.cancel_ack = await asyncio.shield(audio.cancel()) or self.cancel_ack

    async def _send_text(self, ws: aiohttp.ClientWebSocketResponse, audio: _ContextAudio) -> None:
        async for item in self._input_ch:
            if isinstance(item, self._FlushSentinel):
                await ws.send_json(proto.flush(audio.context_id))
            else:
                self._mark_started()
                await audio.send_text(item)
        await ws.send_json(proto.end(audio.context_id))
        audio.input_open = False
