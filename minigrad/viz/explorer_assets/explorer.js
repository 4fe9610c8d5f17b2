// The explorer page's script: reads window.EXPLORER (written by minigrad.viz.explore) and
// wires the graph, the node details, the backward replay, the attention maps and the
// parameter table. No network access of any kind: everything is in this file.
(function () {
  "use strict";
  const D = window.EXPLORER;
  const $ = (id) => document.getElementById(id);
  const nodes = {}, leaves = {};
  D.nodes.forEach((n) => { nodes[n.id] = n; });
  D.leaves.forEach((l) => { leaves[l.id] = l; });
  const root = D.nodes[D.nodes.length - 1];
  const stepOf = {};
  D.order.forEach((id, k) => { stepOf[id] = k; });

  // ---- numbers and arrays --------------------------------------------------------------
  function fmt(x) {
    if (x === null || x === undefined) return "–";
    if (!isFinite(x)) return String(x);
    return Number(x).toPrecision(6);
  }
  function bytes(b64) {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function half(h) {
    const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
    if (e === 0) return s * Math.pow(2, -14) * (f / 1024);
    if (e === 31) return f ? NaN : s * Infinity;
    return s * Math.pow(2, e - 15) * (1 + f / 1024);
  }
  function f32(b64) { return new Float32Array(bytes(b64).buffer); }
  function f16(b64) {
    const b = bytes(b64), view = new DataView(b.buffer), out = new Float64Array(b.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = half(view.getUint16(2 * i, true));
    return out;
  }
  function esc(s) {
    return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  }
  function shape(s) { return s.length === 0 ? "scalar" : "(" + s.join(", ") + (s.length === 1 ? ",)" : ")"); }
  // blue (negative) - white (0) - red (positive), scaled by the largest magnitude
  function diverging(v, limit) {
    if (!isFinite(v)) return "#ff00ff";
    const t = Math.max(-1, Math.min(1, limit > 0 ? v / limit : 0));
    const a = Math.abs(t);
    const [r, g, b] = t >= 0 ? [255 - 77 * a, 255 - 231 * a, 255 - 212 * a] : [255 - 222 * a, 255 - 153 * a, 255 - 83 * a];
    return `rgb(${r | 0},${g | 0},${b | 0})`;
  }
  function sequential(v) { // 0 white .. 1 dark blue (attention weights)
    const t = Math.max(0, Math.min(1, v));
    return `rgb(${(255 - 227 * t) | 0},${(255 - 129 * t) | 0},${(255 - 41 * t) | 0})`;
  }

  // ---- small pieces of HTML ---------------------------------------------------------------
  function statsTable(st, what) {
    if (!st) return '<p class="hint">none</p>';
    const keys = ["min", "max", "mean", "std", "norm"];
    return '<table class="stats"><tr>' + keys.map((k) => `<th>${k}</th>`).join("") + "</tr><tr>" +
      keys.map((k) => `<td data-stat="${what}-${k}">${fmt(st[k])}</td>`).join("") + "</tr></table>";
  }
  function heatTable(heat) {
    if (!heat) return "";
    const v = f16(heat.data);
    let limit = 0;
    v.forEach((x) => { if (isFinite(x)) limit = Math.max(limit, Math.abs(x)); });
    let h = `<div class="hint">slice ${esc(heat.slice)} (largest |value| ${fmt(limit)})</div><table class="heat">`;
    for (let i = 0; i < heat.rows; i++) {
      h += "<tr>";
      for (let j = 0; j < heat.cols; j++) {
        const x = v[i * heat.cols + j];
        h += `<td style="background:${diverging(x, limit)}" title="[${i}, ${j}] = ${fmt(x)}"></td>`;
      }
      h += "</tr>";
    }
    return h + "</table>";
  }
  function nameOf(ref) {
    if (ref === null || ref === undefined) return "constant";
    if (leaves[ref]) return leaves[ref].name;
    const n = nodes[ref];
    return n ? `${n.op} (${n.module})` : ref;
  }
  function link(ref, text) {
    if (ref === null || ref === undefined) return esc(text || "constant");
    return `<a class="link" data-ref="${ref}">${esc(text || nameOf(ref))}</a>`;
  }
  function termsTable(terms, seedText) {
    if (!terms || terms.length === 0) return '<p class="hint">no gradient reached it</p>';
    let h = '<table class="terms"><tr><th>#</th><th>term from</th><th>step</th><th>term norm</th><th>running sum norm</th></tr>';
    terms.forEach((t, k) => {
      const from = t.from === null ? esc(seedText) : link(t.from) + (t.slot ? ` (its input ${t.slot})` : "");
      const step = t.from !== null && stepOf[t.from] !== undefined ? stepOf[t.from] + 1 : "–";
      h += `<tr class="term"><td>${k + 1}</td><td>${from}</td><td>${step}</td><td data-v="${t.norm}">${fmt(t.norm)}</td>` +
        `<td data-v="${t.sum_norm}">${fmt(t.sum_norm)}</td></tr>`;
    });
    if (terms.length > 1) {
      h += `<tr class="total"><td></td><td>sum of ${terms.length} terms</td><td></td><td></td><td>${fmt(terms[terms.length - 1].sum_norm)}</td></tr>`;
    }
    return h + "</table>";
  }

  // ---- the graph: which drawn node shows what -----------------------------------------------
  const views = ["collapsed", "expanded"];
  const targets = { collapsed: {}, expanded: {} }; // svg node id -> {kind, ref}
  const elements = { collapsed: {}, expanded: {} }; // svg node id -> <g>
  views.forEach((view) => {
    D.nodes.forEach((n) => {
      const u = n.units[view];
      if (u.startsWith("g")) {
        const t = targets[view][u] || (targets[view][u] = { kind: "group", ref: u, members: [], params: [] });
        t.members.push(n.id);
      } else {
        targets[view][u] = { kind: "node", ref: n.id };
        targets[view]["t" + u.slice(2)] = { kind: "node", ref: n.id };
      }
    });
    D.leaves.forEach((l) => {
      const u = l.units[view];
      if (!u) return;
      if (u.startsWith("g")) targets[view][u].params.push(l.id);
      else targets[view][u] = { kind: "leaf", ref: l.id };
    });
    targets[view].out = { kind: "node", ref: root.id };
    const box = $("svg-" + view);
    box.querySelectorAll("g.node").forEach((g) => {
      const title = g.querySelector("title");
      const id = title ? title.textContent.trim() : "";
      elements[view][id] = g;
      g.setAttribute("data-id", id);
      g.addEventListener("click", () => {
        const t = targets[view][id];
        if (t) select(t.ref, view);
        else if (id.startsWith("c")) showConstant();
      });
    });
  });
  // the drawn node that shows a node or leaf in a view (a group when collapsed)
  function unitOf(ref, view) {
    if (nodes[ref]) return nodes[ref].units[view];
    if (leaves[ref]) return leaves[ref].units[view];
    return ref;
  }
  function mark(cls, refs) {
    views.forEach((view) => {
      Object.values(elements[view]).forEach((g) => g.classList.remove(cls));
      refs.forEach((ref) => {
        const g = elements[view][unitOf(ref, view)];
        if (g) g.classList.add(cls);
      });
    });
  }
  let view = D.view;
  function showView(v) {
    view = v;
    views.forEach((w) => { $("svg-" + w).style.display = w === v ? "" : "none"; });
    $("view-" + v).checked = true;
  }
  // zoom: scale each picture's width and height (the viewBox keeps its drawing)
  const zoom = { collapsed: 1, expanded: 1 }, natural = {};
  views.forEach((v) => {
    const svg = $("svg-" + v).querySelector("svg");
    if (svg) natural[v] = [parseFloat(svg.getAttribute("width")) || 0, parseFloat(svg.getAttribute("height")) || 0];
  });
  function setZoom(v, z) {
    const svg = $("svg-" + v).querySelector("svg");
    if (!svg || !natural[v]) return;
    zoom[v] = Math.max(0.1, Math.min(4, z));
    svg.setAttribute("width", natural[v][0] * zoom[v] + "pt");
    svg.setAttribute("height", natural[v][1] * zoom[v] + "pt");
  }
  $("zoom-in").addEventListener("click", () => setZoom(view, zoom[view] * 1.25));
  $("zoom-out").addEventListener("click", () => setZoom(view, zoom[view] / 1.25));
  $("zoom-fit").addEventListener("click", () => {
    const box = $("svg-" + view);
    if (natural[view]) setZoom(view, (box.clientWidth - 4) / (natural[view][0] * 4 / 3)); // pt -> px
  });
  // keep a node visible in its scrolling box (the page itself does not move)
  function reveal(g) {
    const box = $("svg-" + view), r = g.getBoundingClientRect(), b = box.getBoundingClientRect();
    if (r.top < b.top || r.bottom > b.bottom) box.scrollTop += r.top - b.top - (b.height - r.height) / 2;
    if (r.left < b.left || r.right > b.right) box.scrollLeft += r.left - b.left - (b.width - r.width) / 2;
  }
  views.forEach((v) => $("view-" + v).addEventListener("change", () => showView(v)));

  // ---- details of a node, a leaf or a collapsed module ---------------------------------------
  function showConstant() {
    $("details").innerHTML = "<h3>constant</h3><p>An input that needs no gradient (a mask, an index, a tensor without requires_grad): backward sends nothing there.</p>";
  }
  function showNode(n) {
    const doc = D.docs[n.cls] || {};
    const inputs = n.inputs.map((ref, k) => `<li>input ${k}: ${shape(n.in_shapes[k])} ${esc(n.in_dtypes[k] || "")} from ${link(ref)}</li>`).join("");
    const saved = n.saved.length ? n.saved.map(([k, v]) => `<li><code>${esc(k)}</code>: ${esc(v)}</li>`).join("") : "<li>nothing</li>";
    const step = stepOf[n.id];
    $("details").innerHTML = `<h3 data-node="${n.id}">${esc(n.op)} <span class="hint">(${esc(n.cls)}, node ${n.id})</span></h3>` +
      `<table class="kv"><tr><th>module</th><td>${esc(n.module)}</td></tr>` +
      `<tr><th>scope</th><td>${esc(n.scope || "–")}</td></tr>` +
      `<tr><th>output</th><td>${shape(n.out_shape)} ${esc(n.dtype)}</td></tr>` +
      `<tr><th>backward step</th><td>${step === undefined ? "not reached" : step + 1 + " of " + D.order.length}</td></tr></table>` +
      `<h4>inputs</h4><ul>${inputs}</ul>` +
      `<h4>value (its output)</h4>${statsTable(n.value.stats, "value")}${heatTable(n.value.heat)}` +
      `<h4>gradient received: dL/d(output)</h4>${statsTable(n.grad.stats, "grad")}${heatTable(n.grad.heat)}` +
      `<h4>how that gradient was summed (one term per consumer)</h4>${termsTable(n.terms, "the seed dL/dL = 1")}` +
      `<h4>saved for backward</h4><ul>${saved}</ul>` +
      `<h4>derivative (the op's docstring)</h4><pre class="doc">${esc(doc.doc || "")}</pre>` +
      (doc.module_doc ? `<details><summary>notes of its module</summary><pre class="doc">${esc(doc.module_doc)}</pre></details>` : "") +
      `<p class="src">forward: ${esc(doc.forward || "")}<br>backward: ${esc(doc.backward || "")}` +
      (doc.ran ? `<br>ran: ${esc(doc.ran)}` : "") + "</p>";
  }
  function showLeaf(l) {
    $("details").innerHTML = `<h3 data-node="${l.id}">${esc(l.name)} <span class="hint">(${l.kind})</span></h3>` +
      `<table class="kv"><tr><th>shape</th><td>${shape(l.shape)} ${esc(l.dtype)}</td></tr></table>` +
      `<h4>value</h4>${statsTable(l.value.stats, "value")}${heatTable(l.value.heat)}` +
      `<h4>gradient (.grad)</h4>${statsTable(l.grad.stats, "grad")}${heatTable(l.grad.heat)}` +
      `<h4>how .grad was summed (one term per use)</h4>${termsTable(l.terms, "")}`;
  }
  function showGroup(gid, t) {
    const ops = t.members.map((ref) => `<li>${link(ref, nodes[ref].op)} ${shape(nodes[ref].out_shape)}</li>`).join("");
    const params = t.params.map((ref) => `<li>${link(ref)}: grad norm ${fmt(leaves[ref].grad.stats && leaves[ref].grad.stats.norm)}</li>`).join("");
    $("details").innerHTML = `<h3 data-node="${gid}">${esc(D.groups[gid] || gid)} <span class="hint">(collapsed: ${t.members.length} ops)</span></h3>` +
      `<h4>parameters</h4><ul>${params || "<li>none</li>"}</ul><h4>ops, in forward order</h4><ol>${ops}</ol>`;
  }
  function select(ref, fromView) {
    const v = fromView || view;
    if (nodes[ref]) showNode(nodes[ref]);
    else if (leaves[ref]) showLeaf(leaves[ref]);
    else if (targets[v][ref] && targets[v][ref].kind === "group") showGroup(ref, targets[v][ref]);
    mark("selected", [ref]);
  }
  document.addEventListener("click", (e) => {
    const a = e.target.closest ? e.target.closest("a.link") : null;
    if (a) select(a.getAttribute("data-ref"));
  });

  // ---- backward replay ----------------------------------------------------------------
  const slider = $("replay-slider");
  slider.max = Math.max(0, D.order.length - 1);
  function replay(k) {
    if (D.order.length === 0) { $("replay").innerHTML = '<p class="hint">backward reached no node</p>'; return; }
    k = Math.max(0, Math.min(D.order.length - 1, k));
    slider.value = k;
    const n = nodes[D.order[k]];
    $("replay-label").textContent = `step ${k + 1} of ${D.order.length}`;
    const sent = [];
    n.inputs.forEach((ref, slot) => {
      if (ref === null) return;
      const target = nodes[ref] || leaves[ref];
      const t = (target.terms || []).find((x) => x.from === n.id && x.slot === slot);
      if (t) sent.push(`<li>to input ${slot}, ${link(ref)}: norm ${fmt(t.norm)}</li>`);
    });
    $("replay").setAttribute("data-node", n.id);
    $("replay").setAttribute("data-step", String(k));
    $("replay").innerHTML = `<p><b>${esc(n.op)}</b> in ${esc(n.module)} ${link(n.id, "(details)")} receives dL/d(output) ${shape(n.out_shape)}, ` +
      `norm <span data-stat="replay-grad-norm">${fmt(n.grad.stats && n.grad.stats.norm)}</span>:</p>` +
      heatTable(n.grad.heat) + termsTable(n.terms, "the seed dL/dL = 1") + `<p>and its backward sends:</p><ul>${sent.join("") || "<li>nothing</li>"}</ul>`;
    mark("visited", D.order.slice(0, k));
    mark("current", [n.id]);
    mark("sender", n.terms.map((t) => t.from).filter((ref) => ref !== null && ref !== n.id));
    document.querySelectorAll("g.node.current.sender").forEach((e) => e.classList.remove("sender")); // same module box
    const g = elements[view][unitOf(n.id, view)];
    if (g) reveal(g);
  }
  slider.addEventListener("input", () => replay(Number(slider.value)));
  $("replay-first").addEventListener("click", () => replay(0));
  $("replay-prev").addEventListener("click", () => replay(Number(slider.value) - 1));
  $("replay-next").addEventListener("click", () => replay(Number(slider.value) + 1));
  $("replay-last").addEventListener("click", () => replay(D.order.length - 1));

  // ---- attention --------------------------------------------------------------------------
  const MAPS = [["A", "A (weights)"], ["dA", "dL/dA"], ["dS", "dL/dS (scores)"], ["AdA", "A ⊙ dL/dA"]];
  const att = D.attention.map((L) => {
    const out = Object.assign({}, L);
    MAPS.forEach(([key]) => { out[key] = f32(L[key]); });
    return out;
  });
  const picked = new Set();
  function attMap(L, h, key, title) {
    const n = L.seq_q * L.seq_k, off = h * n, v = L[key];
    let limit = 0;
    for (let i = 0; i < n; i++) if (isFinite(v[off + i])) limit = Math.max(limit, Math.abs(v[off + i]));
    let s = `<div class="map"><h4>${esc(title)}</h4><table class="att" data-map="${key}"><tr><th></th>` +
      L.tokens.slice(0, L.seq_k).map((t, j) => `<th class="col" data-k="${j}">${esc(t)}</th>`).join("") + "</tr>";
    for (let i = 0; i < L.seq_q; i++) {
      s += `<tr><th class="row${picked.has(i) ? " picked" : ""}" data-q="${i}">${esc(L.tokens[i])}</th>`;
      for (let j = 0; j < L.seq_k; j++) {
        const x = v[off + i * L.seq_k + j];
        const bg = key === "A" ? sequential(x) : diverging(x, limit);
        s += `<td data-q="${i}" data-k="${j}" data-v="${x}" style="background:${bg}" title="${esc(L.tokens[i])} → ${esc(L.tokens[j])}: ${fmt(x)}"></td>`;
      }
      s += "</tr>";
    }
    return s + "</table></div>";
  }
  function showAttention() {
    if (att.length === 0) {
      $("attention").innerHTML = '<p class="hint">No attention_weights op in this graph (fused attention layers record one).</p>';
      return;
    }
    const L = att[Number($("att-layer").value)], h = Number($("att-head").value);
    $("attention").innerHTML = `<p class="hint">${esc(L.module)}, head ${h} (node ${L.node})</p><div class="maps">` +
      MAPS.map(([key, title]) => attMap(L, h, key, title)).join("") + "</div>";
    showSum(L, h);
  }
  function showSum(L, h) {
    if (picked.size === 0) { $("att-sum").innerHTML = '<p class="hint">Click query tokens (row labels) to see their summed attention over the keys.</p>'; return; }
    const qs = Array.from(picked).sort((a, b) => a - b), sums = [];
    for (let j = 0; j < L.seq_k; j++) {
      let s = 0;
      qs.forEach((i) => { s += L.A[h * L.seq_q * L.seq_k + i * L.seq_k + j]; });
      sums.push(s);
    }
    const top = Math.max(...sums, 1e-12);
    $("att-sum").innerHTML = `<h4>summed attention of the queries ${qs.map((i) => esc(L.tokens[i])).join(", ")} (each row sums to 1, so the total is ${qs.length})</h4>` +
      '<table><tr>' + sums.map((s) => `<td><div class="bar" style="height:${(40 * s) / top}px"></div></td>`).join("") + "</tr><tr>" +
      sums.map((s, j) => `<td data-k="${j}" data-v="${s}">${s.toFixed(3)}</td>`).join("") + "</tr><tr>" +
      L.tokens.slice(0, L.seq_k).map((t) => `<td>${esc(t)}</td>`).join("") + "</tr></table>";
  }
  function highlight(q, k) {
    $("attention").querySelectorAll(".hl").forEach((e) => e.classList.remove("hl"));
    $("attention").querySelectorAll("td, th").forEach((e) => {
      const eq = e.getAttribute("data-q"), ek = e.getAttribute("data-k");
      if ((eq !== null && (Number(eq) === q || Number(eq) === k)) || (ek !== null && (Number(ek) === k || Number(ek) === q))) e.classList.add("hl");
    });
  }
  $("attention").addEventListener("mouseover", (e) => {
    const c = e.target.closest("td, th");
    if (!c) return;
    const q = c.getAttribute("data-q"), k = c.getAttribute("data-k");
    if (q !== null && k !== null) highlight(Number(q), Number(k));
    else if (q !== null) highlight(Number(q), Number(q));
    else if (k !== null) highlight(Number(k), Number(k));
  });
  $("attention").addEventListener("click", (e) => {
    const c = e.target.closest("th.row");
    if (!c) return;
    const q = Number(c.getAttribute("data-q"));
    if (picked.has(q)) picked.delete(q); else picked.add(q);
    showAttention();
  });
  att.forEach((L, i) => { $("att-layer").add(new Option(`${i}: ${L.module}`, String(i))); });
  function fillHeads() {
    const sel = $("att-head"), L = att[Number($("att-layer").value)];
    sel.innerHTML = "";
    for (let h = 0; h < (L ? L.heads : 0); h++) sel.add(new Option(String(h), String(h)));
  }
  $("att-layer").addEventListener("change", () => { fillHeads(); showAttention(); });
  $("att-head").addEventListener("change", showAttention);
  $("att-clear").addEventListener("click", () => { picked.clear(); showAttention(); });

  // ---- parameters and the summary line ---------------------------------------------------------
  const params = D.leaves.filter((l) => l.kind === "parameter");
  $("params").innerHTML = '<table class="params"><tr><th>parameter</th><th>shape</th><th>grad norm</th><th>grad max |.|</th></tr>' +
    params.map((l) => {
      const g = l.grad.stats;
      return `<tr data-ref="${l.id}"><td>${esc(l.name)}</td><td>${shape(l.shape)}</td><td data-v="${g ? g.norm : ""}">${fmt(g && g.norm)}</td>` +
        `<td>${g ? fmt(Math.max(Math.abs(g.min), Math.abs(g.max))) : "–"}</td></tr>`;
    }).join("") + "</table>";
  $("params").addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-ref]");
    if (tr) select(tr.getAttribute("data-ref"));
  });
  $("summary").textContent = `loss ${fmt(D.loss)} · ${D.nodes.length} op nodes · ${params.length} parameters · ` +
    `${D.order.length} backward steps · ${D.attention.length} attention layer(s)`;
  $("notice").textContent = D.notice || "";
  $("view-collapsed").parentNode.lastChild.textContent = D.depth === 1 ? " collapsed (one node per module)" :
    ` collapsed (module boxes open to depth ${D.depth - 1}, one node per module below)`;

  showView(view);
  fillHeads();
  showAttention();
  replay(0);
  document.body.setAttribute("data-ready", "1");
})();
