// Voxline playground: text in over the session API (GET /v1/audio/speech/stream), audio out
// through Web Audio as it arrives. Plain script, no dependencies, no build step.
"use strict";

// Test hook (read by tests/playground): what the page received, played and measured.
const stats = (window.voxlineStats = {
  state: "connecting",
  session: null,        // the effective settings of session.updated
  contextId: null,      // the context being spoken
  deltas: 0,            // speech.audio.delta messages of the current context
  samples: 0,           // decoded samples of the current context
  peak: 0,              // largest |sample| decoded (0..1)
  outputPeak: 0,        // largest |sample| seen at the page's audio output while speaking
  firstAudioMs: null,   // first text sent -> first audio delta
  textEndMs: null,      // first text sent -> input_text.end sent
  segments: [],         // speech.segment messages of the current context
  done: null,           // speech.audio.done of the current context
  cancelled: null,      // context.cancelled of the current context
  deltasAfterCancel: 0, // deltas of the current context that arrived after its cancel ack
  stoppedAt: null,      // performance.now() of the Stop click
  silentAfterStopMs: null, // Stop click -> the page's audio output is silent
  errors: [],           // error messages from the server
  sentText: "",         // the context's input text as sent: what words' text_start/text_end index
  words: [],            // the words of speech.words messages, in order
  schedule: [],         // [context ms, AudioContext time, duration ms] of each chunk played
  playedMs: -1,         // the context's audio heard by now, on the playback clock (-1: none yet)
  highlights: [],       // each word as it was highlighted: the word, its index, audioTime, playedMs
  heard: null,          // after Stop: {playedMs, words, text}, the words played before the Stop
});

const $ = (id) => document.getElementById(id);

// ---- Decoding: session formats to float samples -------------------------------------------

const ULAW = new Float32Array(256);
const ALAW = new Float32Array(256);
(function buildG711Tables() {
  for (let i = 0; i < 256; i++) {
    const u = ~i & 0xff;
    let t = (((u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
    ULAW[i] = ((u & 0x80) ? 0x84 - t : t - 0x84) / 32768;
    const a = i ^ 0x55;
    const seg = (a & 0x70) >> 4;
    let v = (a & 0x0f) << 4;
    v = seg === 0 ? v + 8 : seg === 1 ? v + 0x108 : (v + 0x108) << (seg - 1);
    ALAW[i] = ((a & 0x80) ? v : -v) / 32768;
  }
})();

/** Turns the bytes of one context's deltas into floats, keeping an odd byte for the next. */
class Decoder {
  constructor(format) {
    this.format = format;
    this.carry = null;
  }

  decode(bytes) {
    if (this.format === "ulaw" || this.format === "alaw") {
      const table = this.format === "ulaw" ? ULAW : ALAW;
      return Float32Array.from(bytes, (b) => table[b]);
    }
    if (this.carry) {
      const joined = new Uint8Array(this.carry.length + bytes.length);
      joined.set(this.carry);
      joined.set(bytes, this.carry.length);
      bytes = joined;
      this.carry = null;
    }
    const usable = bytes.length & ~1;
    if (usable < bytes.length) this.carry = bytes.slice(usable);
    const view = new DataView(bytes.buffer, bytes.byteOffset, usable);
    const little = this.format === "pcm";
    const out = new Float32Array(usable / 2);
    for (let i = 0; i < out.length; i++) out[i] = view.getInt16(2 * i, little) / 32768;
    return out;
  }
}

function base64Bytes(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

// ---- Playing: back-to-back buffers on one AudioContext -------------------------------------

/** Schedules decoded chunks gaplessly; `stop()` silences everything at once. */
class Player {
  constructor() {
    this.context = null;
    this.sources = new Set();
    this.nextTime = 0;
  }

  ensure() {
    if (!this.context) {
      this.context = new AudioContext();
      this.analyser = this.context.createAnalyser();
      this.analyser.fftSize = 256;
      this.analyser.connect(this.context.destination);
      this.probe = new Float32Array(this.analyser.fftSize);
      setInterval(() => this.measure(), 5);
    }
    if (this.context.state === "suspended") this.context.resume();
  }

  /** Schedules `samples` after those already scheduled; returns their start on the audio clock. */
  play(samples, rate) {
    if (!samples.length) return null;
    const buffer = this.context.createBuffer(1, samples.length, rate);
    buffer.copyToChannel(samples, 0);
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.analyser);
    const now = this.context.currentTime;
    if (this.nextTime < now + 0.02) this.nextTime = now + 0.05; // (re)start with a small lead
    const start = this.nextTime;
    source.start(start);
    this.nextTime += buffer.duration;
    this.sources.add(source);
    source.onended = () => this.sources.delete(source);
    return start;
  }

  /** The audio clock's time of what the listener hears now (the output's latency taken off). */
  heardTime() {
    return this.context.currentTime - (this.context.outputLatency || 0);
  }

  stop() {
    for (const source of this.sources) source.stop();
    this.sources.clear();
    this.nextTime = 0;
  }

  /** Reads the output level: the test hook's proof that audio reached the speakers or ended. */
  measure() {
    this.analyser.getFloatTimeDomainData(this.probe);
    let peak = 0;
    for (const v of this.probe) peak = Math.max(peak, Math.abs(v));
    if (stats.stoppedAt === null) {
      stats.outputPeak = Math.max(stats.outputPeak, peak);
    } else if (stats.silentAfterStopMs === null && peak === 0) {
      stats.silentAfterStopMs = performance.now() - stats.stoppedAt;
    }
  }
}

// ---- Words: the text as it plays ----------------------------------------------------------

/** Maps the audio clock to the context's timeline, chunk by chunk: a late chunk leaves a gap. */
class PlaybackClock {
  constructor(marks) {
    this.marks = marks; // [context ms, audio clock start, duration ms], in playing order
  }

  add(contextMs, start, durationMs) {
    this.marks.push([contextMs, start, durationMs]);
  }

  /** Milliseconds of the context played at audio clock `time`; -1 before its first sample. */
  positionAt(time) {
    for (let i = this.marks.length - 1; i >= 0; i--) {
      const [contextMs, start, durationMs] = this.marks[i];
      if (start <= time) return contextMs + Math.min((time - start) * 1000, durationMs);
    }
    return -1;
  }
}

/** The sent text with a span per word spoken; marks the words played and the one playing. */
class Transcript {
  constructor(element) {
    this.element = element;
    this.reset();
  }

  reset() {
    this.text = "";
    this.words = [];
    this.spans = [];    // the span of each word (words spoken from one text span share it)
    this.current = -1;  // the word playing now
    this.cut = -1;      // the word Stop cut short
    this.played = 0;    // how many words have played to their end
    this.element.replaceChildren();
  }

  append(text) {
    this.text += text;
    this.render();
  }

  addWords(words) {
    this.words.push(...words);
    this.render();
  }

  render() {
    const nodes = [];
    this.spans = [];
    let cursor = 0;
    for (const word of this.words) {
      const shared = this.spans.length && word.text_start < cursor; // e.g. "$5": "five dollars"
      if (shared) {
        this.spans.push(this.spans[this.spans.length - 1]);
        continue;
      }
      const span = document.createElement("span");
      span.textContent = this.text.slice(word.text_start, word.text_end);
      nodes.push(this.text.slice(cursor, word.text_start), span);
      this.spans.push(span);
      cursor = word.text_end;
    }
    nodes.push(this.text.slice(cursor));
    this.element.replaceChildren(...nodes);
    this.mark();
  }

  /** Follows playback to `playedMs`; returns the index of the word that began playing, or -1. */
  follow(playedMs) {
    let played = this.played;
    while (played < this.words.length && this.words[played].end_ms <= playedMs) played++;
    const next = this.words[played];
    const current = next && next.start_ms <= playedMs ? played : -1;
    if (played === this.played && current === this.current) return -1;
    const began = current !== this.current ? current : -1;
    this.played = played;
    this.current = current;
    this.mark();
    return began;
  }

  /** Playback stopped at `playedMs`: nothing plays now, the word playing then was cut. */
  stop(playedMs) {
    this.follow(playedMs);
    this.cut = this.current;
    this.current = -1;
    this.mark();
  }

  mark() {
    for (const span of this.spans) span.classList.remove("played", "current", "cut");
    for (let i = 0; i < this.played; i++) this.spans[i].classList.add("played");
    if (this.current >= 0) this.spans[this.current].classList.add("current");
    if (this.cut >= 0) this.spans[this.cut].classList.add("cut");
  }
}

// ---- The session --------------------------------------------------------------------------

const player = new Player();
const transcript = new Transcript($("transcript"));
let clock = new PlaybackClock(stats.schedule);
let socket = null;
let contextCount = 0;
let decoder = null;
let typing = null;      // the running "type like an LLM" loop's stop flag
let textSentAt = null;
let speakWhenReady = false; // Speak pressed while the session was closed: speak once reopened

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const key = $("api-key").value.trim();
  const query = key ? "?api_key=" + encodeURIComponent(key) : "";
  return `${scheme}//${location.host}/v1/audio/speech/stream${query}`;
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function connect() {
  if (socket) {
    socket.onclose = null; // the old session's close says nothing about the new one
    socket.close();
  }
  setStatus("connecting…");
  stats.state = "connecting";
  socket = new WebSocket(socketUrl());
  socket.onmessage = (event) => handle(JSON.parse(event.data));
  socket.onclose = (event) => {
    stats.state = "closed";
    setStatus(`disconnected (${event.code}${event.reason ? ": " + event.reason : ""})`, true);
    $("speak-button").disabled = false;
    $("stop-button").disabled = true;
  };
}

function chosenSettings() {
  const settings = { format: $("format").value };
  if ($("voice").value) settings.voice = $("voice").value;
  if ($("language").value) settings.language = $("language").value;
  if ($("sample-rate").value) settings.sample_rate = Number($("sample-rate").value);
  return settings;
}

function updateSession() {
  send({ type: "session.update", session: chosenSettings() });
}

const handlers = {
  "session.created": () => updateSession(),
  "session.updated": (msg) => {
    stats.session = msg.session;
    stats.state = "ready";
    setStatus(`ready: ${msg.session.format} at ${msg.session.sample_rate} Hz`);
    if (speakWhenReady) {
      speakWhenReady = false;
      speak();
    }
  },
  "speech.audio.delta": (msg) => {
    if (msg.context_id !== stats.contextId) return;
    if (stats.cancelled) stats.deltasAfterCancel++;
    if (stats.stoppedAt !== null) return;
    onAudio(base64Bytes(msg.audio));
  },
  "speech.words": (msg) => {
    if (msg.context_id !== stats.contextId || stats.stoppedAt !== null) return;
    stats.words.push(...msg.words);
    transcript.addWords(msg.words);
  },
  "speech.segment": (msg) => {
    if (msg.context_id !== stats.contextId || stats.stoppedAt !== null) return;
    stats.segments.push(msg);
    showSegment(msg, false);
  },
  "speech.audio.done": (msg) => {
    if (msg.context_id !== stats.contextId) return;
    stats.done = msg;
    $("result").textContent = `done: ${msg.audio_ms.toFixed(0)} ms of audio`;
    finishUtterance();
  },
  "context.cancelled": (msg) => {
    if (msg.context_id !== stats.contextId) return;
    stats.cancelled = msg;
    const sent = msg.heard_text ?? (msg.segments || []).map((s) => s.text).join(" ");
    $("result").textContent = `stopped after ${msg.audio_ms.toFixed(0)} ms sent` +
      (sent ? ` (covering: “${sent}”)` : "");
    finishUtterance();
  },
  error: (msg) => {
    stats.errors.push(msg);
    const err = msg.error || {};
    setStatus(`error ${err.code}: ${err.message}`, true);
    if (!msg.context_id || msg.context_id === stats.contextId) finishUtterance();
  },
};

function handle(msg) {
  const handler = handlers[msg.type];
  if (handler) handler(msg);
}

function onAudio(bytes) {
  const samples = decoder.decode(bytes);
  if (stats.firstAudioMs === null) {
    stats.firstAudioMs = performance.now() - textSentAt;
    $("first-audio").textContent = `${stats.firstAudioMs.toFixed(0)} ms`;
  }
  stats.deltas++;
  stats.samples += samples.length;
  for (const v of samples) stats.peak = Math.max(stats.peak, Math.abs(v));
  const rate = stats.session.sample_rate;
  $("audio-received").textContent = `${(stats.samples / rate).toFixed(2)} s (${stats.deltas} deltas)`;
  const start = player.play(samples, rate);
  if (start !== null) {
    clock.add((stats.samples - samples.length) * 1000 / rate, start, samples.length * 1000 / rate);
  }
}

/** Highlights the word playing now (run on a timer while a context is spoken). */
function followPlayback() {
  if (!player.context || !stats.contextId || stats.stoppedAt !== null) return;
  const audioTime = player.heardTime();
  const playedMs = clock.positionAt(audioTime);
  stats.playedMs = playedMs;
  const index = transcript.follow(playedMs);
  if (index < 0) return;
  const word = stats.words[index];
  stats.highlights.push({ ...word, index, audioTime, playedMs });
}

/** After Stop: the words whose audio the page played to their end, and the text up to them. */
function showHeard(playedMs) {
  const words = stats.words.filter((word) => word.end_ms <= playedMs);
  const end = words.length ? words[words.length - 1].text_end : 0;
  stats.heard = { playedMs, words, text: stats.sentText.slice(0, end) };
  transcript.stop(playedMs);
  $("heard").textContent = stats.heard.text || (stats.words.length ? "nothing" : "– (no word timings)");
}

function showSegment(msg, cut) {
  const item = document.createElement("li");
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = `${(msg.audio_start_ms / 1000).toFixed(2)}–${(msg.audio_end_ms / 1000).toFixed(2)} s`;
  item.append(time, msg.text);
  if (cut) item.className = "cut";
  $("segments").append(item);
}

// ---- Speak and Stop -----------------------------------------------------------------------

function resetUtterance(contextId) {
  Object.assign(stats, {
    contextId, deltas: 0, samples: 0, peak: 0, outputPeak: 0, firstAudioMs: null, textEndMs: null,
    segments: [], done: null, cancelled: null, deltasAfterCancel: 0, stoppedAt: null,
    silentAfterStopMs: null, sentText: "", words: [], schedule: [], playedMs: -1,
    highlights: [], heard: null,
  });
  decoder = new Decoder(stats.session.format);
  clock = new PlaybackClock(stats.schedule);
  transcript.reset();
  for (const id of ["first-audio", "audio-received", "result", "heard"]) $(id).textContent = "–";
  $("segments").replaceChildren();
}

/** Words with their trailing spaces, as an LLM streams tokens (the client owns spacing). */
function tokens(text) {
  return text.match(/\S+\s*/g) || [];
}

async function typeLikeAnLlm(text, contextId, wordMs, flag) {
  for (const token of tokens(text)) {
    if (flag.stopped) return;
    appendText(token, contextId);
    await new Promise((resolve) => setTimeout(resolve, wordMs * (0.5 + Math.random())));
  }
  if (!flag.stopped) endText(contextId);
}

function appendText(text, contextId) {
  send({ type: "input_text.append", text, context_id: contextId });
  if (contextId !== stats.contextId) return;
  stats.sentText += text;
  transcript.append(text);
}

function endText(contextId) {
  send({ type: "input_text.end", context_id: contextId });
  stats.textEndMs = performance.now() - textSentAt;
}

function speak() {
  const text = $("text").value;
  if (stats.state === "closed") { // e.g. the server's idle timeout: open a new session first
    speakWhenReady = true;
    connect();
    return;
  }
  if (!text.trim() || stats.state !== "ready") return;
  player.ensure();
  player.stop();
  const contextId = `play-${++contextCount}`;
  resetUtterance(contextId);
  $("speak-button").disabled = true;
  $("stop-button").disabled = false;
  setStatus(`speaking (${contextId})`);
  textSentAt = performance.now();
  if ($("llm-mode").checked) {
    typing = { stopped: false };
    typeLikeAnLlm(text, contextId, Number($("word-ms").value) || 0, typing);
  } else {
    appendText(text, contextId);
    endText(contextId);
  }
}

function stop() {
  if (!stats.contextId || stats.stoppedAt !== null) return;
  stats.stoppedAt = performance.now();
  if (typing) typing.stopped = true;
  send({ type: "context.cancel", context_id: stats.contextId });
  // Audio the context rendered before the Stop still reaches the ear: count up to currentTime.
  const playedMs = clock.positionAt(player.context.currentTime);
  player.stop();
  showHeard(playedMs);
  $("stop-button").disabled = true;
}

function finishUtterance() {
  $("speak-button").disabled = false;
  $("stop-button").disabled = true;
  if (stats.state === "ready") setStatus("ready");
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

// ---- Voices, languages, upload ------------------------------------------------------------

function authHeaders(key) {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

class NeedsKey extends Error {}

async function loadChoices() {
  const headers = authHeaders($("api-key").value.trim());
  const [speakersResponse, languages] = await Promise.all([
    fetch("/speakers", { headers }),
    fetch("/languages").then((r) => r.json()),
  ]);
  if (speakersResponse.status === 401 || speakersResponse.status === 403) {
    throw new NeedsKey((await speakersResponse.json()).message);
  }
  const speakers = await speakersResponse.json();
  fillSelect($("voice"), speakers.speakers || [], speakers.default);
  fillSelect($("language"), languages.languages || [], (languages.languages || [])[0]);
}

function fillSelect(select, values, chosen) {
  const keep = select.value;
  select.replaceChildren(...values.map((value) => new Option(value, value)));
  select.value = values.includes(keep) ? keep : chosen;
}

async function uploadVoice(event) {
  event.preventDefault();
  const form = new FormData();
  form.append("name", $("voice-name").value.trim());
  for (const file of $("voice-clips").files) form.append("clip", file);
  $("upload-status").textContent = "uploading…";
  const response = await fetch("/v1/voices", {
    method: "POST", body: form, headers: authHeaders($("admin-key").value.trim()),
  });
  const body = await response.json()
    .catch(() => ({ error: response.status, message: response.statusText }));
  $("upload-status").textContent = response.ok
    ? `added ${body.name || $("voice-name").value}` : `${body.error}: ${body.message}`;
  $("upload-status").classList.toggle("error", !response.ok);
  if (response.ok) await loadChoices();
}

/** Load the choices, then open the session; a server that wants a key waits for one. */
function loadAndConnect() {
  return loadChoices().then(connect, (err) => {
    stats.state = err instanceof NeedsKey ? "needs_key" : "failed";
    setStatus(err instanceof NeedsKey
      ? `this server needs an API key: type it below and press Reconnect (${err.message})`
      : `cannot load voices: ${err}`, true);
  });
}

function start() {
  $("speak-button").addEventListener("click", speak);
  $("stop-button").addEventListener("click", stop);
  $("reconnect-button").addEventListener("click", loadAndConnect);
  $("upload-form").addEventListener("submit", uploadVoice);
  for (const id of ["voice", "language", "format", "sample-rate"]) {
    $(id).addEventListener("change", updateSession);
  }
  setInterval(followPlayback, 10);
  loadAndConnect();
}

start();
