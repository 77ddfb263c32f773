// Listen-in: live call audio from /v1/ws/listen/{id} (16-bit little-endian PCM, stereo interleaved, 8 kHz)
// played through Web Audio as a queue of scheduled 8 kHz AudioBuffers, which the context resamples.
// Counters on window.callwatchListen let tests (and curious people) see that audio is flowing.

import { socketUrl } from "./session.js";

const RATE = 8000;
const START_DELAY_S = 0.25; // a little jitter buffer before the first frame plays
const MAX_AHEAD_S = 1.5; // audio arriving faster than real time beyond this is dropped, not queued forever

export const listenStats = { samplesReceived: 0, samplesScheduled: 0, samplesDropped: 0, frames: 0, callId: null };
window.callwatchListen = listenStats;

export class ListenIn {
  constructor({ onState }) {
    this.onState = onState; // (state: "connecting"|"playing"|"ended"|"error", detail?: string) => void
    this.context = null;
    this.gain = null;
    this.socket = null;
    this.callId = null;
    this.nextTime = 0;
  }

  get active() {
    return this.socket !== null;
  }

  async start(callId) {
    this.stop();
    if (!this.context) {
      this.context = new AudioContext({ latencyHint: "interactive" });
      this.gain = this.context.createGain();
      this.gain.connect(this.context.destination);
    }
    await this.context.resume();
    this.callId = callId;
    listenStats.callId = callId;
    this.nextTime = 0;
    const socket = new WebSocket(socketUrl(`/v1/ws/listen/${encodeURIComponent(callId)}`));
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    this.onState("connecting");
    socket.addEventListener("open", () => this.onState("playing"));
    socket.addEventListener("message", (event) => {
      if (typeof event.data === "string") {
        const message = JSON.parse(event.data);
        this.onState("error", message.message || "listen-in refused");
      } else {
        this.play(event.data);
      }
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.callId = null;
      this.onState("ended", event.code === 1008 ? "Listen-in needs a supervisor token" : "");
    });
  }

  stop() {
    const socket = this.socket;
    this.socket = null;
    this.callId = null;
    if (socket) {
      socket.close();
      this.onState("ended", "");
    }
  }

  setVolume(value) {
    if (this.gain) this.gain.gain.value = value;
  }

  play(data) {
    const view = new DataView(data);
    const frames = Math.floor(data.byteLength / 4);
    if (!frames) return;
    listenStats.frames += 1;
    listenStats.samplesReceived += frames;
    const context = this.context;
    const now = context.currentTime;
    if (this.nextTime < now) this.nextTime = now + START_DELAY_S;
    if (this.nextTime > now + MAX_AHEAD_S) {
      listenStats.samplesDropped += frames;
      return;
    }
    const buffer = context.createBuffer(2, frames, RATE);
    const customer = buffer.getChannelData(0);
    const agent = buffer.getChannelData(1);
    for (let i = 0; i < frames; i += 1) {
      customer[i] = view.getInt16(i * 4, true) / 32768;
      agent[i] = view.getInt16(i * 4 + 2, true) / 32768;
    }
    const source = context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.gain);
    source.start(this.nextTime);
    this.nextTime += frames / RATE;
    listenStats.samplesScheduled += frames;
  }
}
