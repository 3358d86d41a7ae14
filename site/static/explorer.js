/* The latent explorer of notebook 10, live in the page: no kernel, no server, no library.
 *
 * The site build tags the notebook's explorer cell (its static figure stays for headless runs and GitHub),
 * and this script puts the live explorer after it. It loads the 2-D VAE's decoder that
 * scripts/export_decoder.py exported (vae_decoder_2d.json, the header, and vae_decoder_2d.bin, the numbers),
 * refuses the .bin unless its SHA-256 matches the header, as utils.weights refuses shipped weights that do not
 * match their manifest, and decodes with a plain forward pass: Dense 2 -> 256 (ReLU) -> 512 (ReLU) -> 784
 * (sigmoid), about half a million multiply-adds per image, so a drag redraws at once.
 *
 * In Node (the tests), `require` gives the functions: sha256Hex, parseDecoder, decode.
 */
(function (root) {
  "use strict";

  // ---- SHA-256 (FIPS 180-4), so that the check works in any page, secure context or not ----
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);

  function sha256Hex(bytes) {
    const length = bytes.length;
    const padded = new Uint8Array((((length + 9 + 63) >> 6) << 6));
    padded.set(bytes);
    padded[length] = 0x80;
    const view = new DataView(padded.buffer);
    view.setUint32(padded.length - 8, Math.floor(length / 0x20000000));
    view.setUint32(padded.length - 4, (length << 3) >>> 0);
    const h = new Uint32Array([
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]);
    const w = new Uint32Array(64);
    const rotr = (x, n) => (x >>> n) | (x << (32 - n));
    for (let block = 0; block < padded.length; block += 64) {
      for (let i = 0; i < 16; i++) w[i] = view.getUint32(block + 4 * i);
      for (let i = 16; i < 64; i++) {
        const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
        const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
      }
      let [a, b, c, d, e, f, g, hh] = h;
      for (let i = 0; i < 64; i++) {
        const t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        const t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
      }
      const next = [a, b, c, d, e, f, g, hh];
      for (let i = 0; i < 8; i++) h[i] = h[i] + next[i];
    }
    return Array.from(h, (x) => x.toString(16).padStart(8, "0")).join("");
  }

  // ---- the decoder file ----
  function halfToFloat(bits) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const fraction = bits & 0x3ff;
    if (exponent === 0) return sign * fraction * 2 ** -24;
    if (exponent === 31) return fraction ? NaN : sign * Infinity;
    return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
  }

  function readArray(view, entry) {
    const count = entry.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(count);
    const size = entry.dtype === "float16" ? 2 : entry.dtype === "float32" ? 4 : 0;
    if (!size) throw new Error(`unknown dtype ${entry.dtype}`);
    if (entry.offset + count * size > view.byteLength) throw new Error("an array lies past the end of the file");
    for (let i = 0; i < count; i++) {
      const at = entry.offset + i * size;
      values[i] = size === 2 ? halfToFloat(view.getUint16(at, true)) : view.getFloat32(at, true);
    }
    return values;
  }

  /* The decoder and anchors of a header and its .bin (an ArrayBuffer or a Uint8Array); throws when the
   * .bin's SHA-256 is not the header's, so a damaged or mismatched file is never used. */
  function parseDecoder(header, data) {
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
    const digest = sha256Hex(bytes);
    if (digest !== header.sha256) {
      throw new Error(
        `${header.file} fails its sha256 check (${digest.slice(0, 12)}..., expected ` +
          `${String(header.sha256).slice(0, 12)}...); it is not used.`,
      );
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let inputs = header.latent_dim;
    const layers = header.layers.map((layer) => {
      const kernel = readArray(view, layer.kernel);
      const bias = readArray(view, layer.bias);
      if (kernel.length !== inputs * layer.units || bias.length !== layer.units) {
        throw new Error("the header's layer shapes do not chain");
      }
      const shaped = { inputs, units: layer.units, activation: layer.activation, kernel, bias };
      inputs = layer.units;
      return shaped;
    });
    const anchors = readArray(view, header.anchors);
    return { layers, anchors, names: header.anchors.names, latentDim: header.latent_dim, header };
  }

  const ACTIVATIONS = {
    relu: (x) => (x > 0 ? x : 0),
    sigmoid: (x) => 1 / (1 + Math.exp(-x)),
    linear: (x) => x,
  };

  /* One latent point (an array of latentDim numbers) -> the decoded pixels, a Float32Array. Each layer is
   * x @ kernel + bias, the kernel stored (inputs, units) row-major as Keras stores it. */
  function decode(decoder, point) {
    let x = Float32Array.from(point);
    for (const layer of decoder.layers) {
      const out = new Float64Array(layer.bias);
      const { kernel, units } = layer;
      for (let i = 0; i < layer.inputs; i++) {
        const xi = x[i];
        if (xi === 0) continue;
        const row = i * units;
        for (let j = 0; j < units; j++) out[j] += xi * kernel[row + j];
      }
      const activation = ACTIVATIONS[layer.activation];
      if (!activation) throw new Error(`unknown activation ${layer.activation}`);
      x = Float32Array.from(out, activation);
    }
    return x;
  }

  const api = { sha256Hex, halfToFloat, parseDecoder, decode };
  if (typeof module === "object" && module.exports) {
    module.exports = api;
    return;
  }
  root.aeExplorer = api;

  // ---- the page ----
  const MARKER = ".tag_latent-explorer";

  function element(tag, attributes = {}, children = []) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  function draw(canvas, pixels) {
    const context = canvas.getContext("2d");
    const image = context.createImageData(28, 28);
    for (let i = 0; i < 784; i++) {
      const level = Math.round(255 * (1 - Math.min(1, Math.max(0, pixels[i])))); // ink dark on white
      image.data.set([level, level, level, 255], 4 * i);
    }
    context.putImageData(image, 0, 0);
  }

  function slider(label, min, max, step, value) {
    const input = element("input", { type: "range", min, max, step, value, "aria-label": label });
    const shown = element("output", { text: Number(value).toFixed(2) });
    const row = element("label", { class: "ae-explorer-row" }, [element("span", { text: label }), input, shown]);
    return { input, shown, row };
  }

  function digitCanvas() {
    return element("canvas", { width: 28, height: 28, class: "ae-explorer-digit", role: "img" });
  }

  function build(container, decoder) {
    const { limit, step } = decoder.header.slider;
    const fmt = (v) => Number(v).toFixed(2);
    const z0 = slider("z[0]", -limit, limit, step, 0);
    const z1 = slider("z[1]", -limit, limit, step, 0);
    const pointCanvas = digitCanvas();
    const showPoint = () => {
      const z = [Number(z0.input.value), Number(z1.input.value)];
      z0.shown.textContent = fmt(z[0]);
      z1.shown.textContent = fmt(z[1]);
      draw(pointCanvas, decode(decoder, z));
      pointCanvas.setAttribute("aria-label", `The digit the decoder draws at z = (${fmt(z[0])}, ${fmt(z[1])})`);
    };
    const choice = (label, selected) => {
      const select = element("select", { "aria-label": label });
      decoder.names.forEach((name, index) => select.append(element("option", { value: index, text: name })));
      select.value = String(selected);
      return { select, row: element("label", { class: "ae-explorer-row" }, [element("span", { text: label }), select]) };
    };
    const from = choice("from", 0);
    const to = choice("to", 1);
    const t = slider("t", 0, 1, step, 0);
    const pathCanvas = digitCanvas();
    const showPath = () => {
      const a = Number(from.select.value);
      const b = Number(to.select.value);
      const s = Number(t.input.value);
      const d = decoder.latentDim;
      const z = Array.from({ length: d }, (_, k) => (1 - s) * decoder.anchors[a * d + k] + s * decoder.anchors[b * d + k]);
      t.shown.textContent = fmt(s);
      draw(pathCanvas, decode(decoder, z));
      pathCanvas.setAttribute(
        "aria-label",
        `The digit the decoder draws at t = ${fmt(s)} on the way from ${decoder.names[a]} to ${decoder.names[b]}`,
      );
    };
    [z0.input, z1.input].forEach((input) => input.addEventListener("input", showPoint));
    [from.select, to.select].forEach((select) => select.addEventListener("change", showPath));
    t.input.addEventListener("input", showPath);
    const panel = (title, rows, canvas, name) =>
      element("div", { class: "ae-explorer-panel", "data-panel": name }, [
        element("p", { class: "ae-explorer-title", text: title }),
        ...rows,
        canvas,
      ]);
    container.replaceChildren(
      element("p", {
        class: "ae-explorer-intro",
        text:
          "Live explorer: the 2-D VAE's shipped decoder runs in your browser. Drag z[0] and z[1] to decode any " +
          "point of the latent space, or t to walk from one test digit's latent mean to another's.",
      }),
      element("div", { class: "ae-explorer-panels" }, [
        panel("Any point z", [z0.row, z1.row], pointCanvas, "point"),
        panel("From one digit to another", [from.row, to.row, t.row], pathCanvas, "path"),
      ]),
    );
    showPoint();
    showPath();
    container.dataset.state = "ready";
  }

  async function load(container) {
    const base = `${document.documentElement.dataset.content_root || ""}_static/explorer/`;
    try {
      const header = await (await fetch(`${base}vae_decoder_2d.json`)).json();
      const response = await fetch(base + header.file);
      if (!response.ok) throw new Error(`${header.file}: HTTP ${response.status}`);
      build(container, parseDecoder(header, await response.arrayBuffer()));
    } catch (error) {
      const served = location.protocol !== "file:";
      container.dataset.state = "refused";
      container.replaceChildren(
        element("p", {
          class: "ae-explorer-error",
          text: served
            ? `The live explorer could not start: ${error.message}`
            : "The live explorer needs the site served over HTTP (for instance `python -m http.server` in " +
              "the site's folder); the static figure above shows the same two views.",
        }),
      );
      if (served) console.error("latent explorer:", error);
    }
  }

  function start() {
    document.querySelectorAll(MARKER).forEach((cell) => {
      const container = element("div", {
        class: "ae-explorer",
        role: "group",
        "aria-label": "Live latent explorer",
        "data-state": "loading",
      });
      container.append(element("p", { class: "ae-explorer-intro", text: "Loading the live explorer..." }));
      cell.after(container);
      load(container);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})(typeof window === "object" ? window : globalThis);
