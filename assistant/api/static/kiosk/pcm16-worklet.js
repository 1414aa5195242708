/* AudioWorklet: microphone audio (any rate) → mono 16 kHz PCM16 frames.
 *
 * Each output sample is the mean of the input samples it covers (a box filter:
 * enough anti-aliasing for speech at 16 kHz). Frames of FRAME_SAMPLES samples
 * (0.1 s) are posted to the page as transferable ArrayBuffers; the message
 * "flush" posts what is left, then {flushed: true}.
 */
var TARGET_RATE = 16000;
var FRAME_SAMPLES = 1600;

class Pcm16Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET_RATE; // input samples per output sample
    this.pos = 0;
    this.sum = 0;
    this.count = 0;
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.filled = 0;
    var self = this;
    this.port.onmessage = function (event) {
      if (event.data === "flush") {
        self.post();
        self.port.postMessage({ flushed: true });
      }
    };
  }

  post() {
    if (!this.filled) return;
    var out = this.frame.slice(0, this.filled);
    this.port.postMessage(out.buffer, [out.buffer]);
    this.filled = 0;
  }

  process(inputs) {
    var input = inputs[0];
    if (!input || !input.length) return true;
    var channels = input.length;
    var length = input[0].length;
    for (var i = 0; i < length; i++) {
      var value = input[0][i];
      if (channels > 1) {
        for (var c = 1; c < channels; c++) value += input[c][i];
        value /= channels;
      }
      this.sum += value;
      this.count++;
      this.pos += 1;
      if (this.pos >= this.step) {
        this.pos -= this.step;
        var sample = this.sum / this.count;
        this.sum = 0;
        this.count = 0;
        if (sample > 1) sample = 1;
        else if (sample < -1) sample = -1;
        this.frame[this.filled++] = sample < 0 ? sample * 32768 : sample * 32767;
        if (this.filled === FRAME_SAMPLES) this.post();
      }
    }
    return true;
  }
}

registerProcessor("pcm16-capture", Pcm16Capture);
