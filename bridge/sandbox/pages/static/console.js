// The agent console.  It reads one digest, GET /sandbox/console/state, every second and
// acts through the Udesk simulator's control API (/_sim/agents, /_sim/agent_reply,
// /_sim/robot_reply, /_sim/urobot_reply, /_sim/transfer, /_sim/close, /_sim/advance_queue,
// /_sim/config): the same calls a test makes.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  let selected = decodeURIComponent(location.hash.slice(1)) || null;
  let last = null; // the latest digest
  let modeTouched = false; // the agent picked a mode by hand for this conversation
  const drawn = {}; // what each panel last showed, so unchanged panels are left alone

  // Re-rendering a panel every second would swallow clicks and close open dropdowns;
  // panels are rebuilt only when what they show changed.
  function changed(panel, data) {
    const key = JSON.stringify(data);
    if (drawn[panel] === key) return false;
    drawn[panel] = key;
    return true;
  }

  // --- talking to the simulator -----------------------------------------------------------

  async function sim(path, body) {
    const response = await fetch(`/_sim/${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.error || response.statusText);
    return answer;
  }

  async function act(what, path, body) {
    try {
      const result = await sim(path, body);
      await refresh();
      return result;
    } catch (err) {
      toast(`${what} failed: ${err.message}`);
      return null;
    }
  }

  function toast(text) {
    const el = $("toast");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => (el.hidden = true), 4000);
  }

  // --- small DOM helpers ------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  // Agent HTML and robot answers are shown as HTML, like Udesk does, but only a few
  // harmless tags survive: this page must not run what someone typed.
  const ALLOWED = new Set(["B", "STRONG", "I", "EM", "U", "S", "DEL", "A", "BR", "P", "DIV", "SPAN", "CODE", "PRE", "UL", "OL", "LI", "IMG", "BLOCKQUOTE"]);

  function sanitized(html) {
    const doc = new DOMParser().parseFromString(`<div>${html}</div>`, "text/html");
    const copy = (node) => {
      if (node.nodeType === Node.TEXT_NODE) return document.createTextNode(node.textContent);
      if (node.nodeType !== Node.ELEMENT_NODE) return null;
      const kids = Array.from(node.childNodes).map(copy).filter(Boolean);
      if (!ALLOWED.has(node.tagName)) {
        const frag = document.createDocumentFragment();
        kids.forEach((k) => frag.appendChild(k));
        return frag;
      }
      const out = document.createElement(node.tagName);
      const href = node.getAttribute("href");
      if (node.tagName === "A" && href && /^(https?:|mailto:)/i.test(href)) {
        out.href = href;
        out.target = "_blank";
        out.rel = "noopener noreferrer";
      }
      const src = node.getAttribute("src");
      if (node.tagName === "IMG" && src && /^https?:/i.test(src)) out.src = src;
      if (node.classList.contains("flow-item")) out.className = "flow-item";
      kids.forEach((k) => out.appendChild(k));
      return out;
    };
    const frag = document.createDocumentFragment();
    Array.from(doc.body.firstChild.childNodes).map(copy).filter(Boolean).forEach((n) => frag.appendChild(n));
    return frag;
  }

  const clock = (t) => new Date(t * 1000).toTimeString().slice(0, 8);

  // --- rendering ----------------------------------------------------------------------------

  function renderAgents(agents) {
    if (!changed("agents", agents)) return;
    $("agents").replaceChildren(
      ...agents.map((a) =>
        el("li", { class: `agent ${a.status}` },
          el("span", { class: "dot", title: a.status }),
          el("span", { class: "name" }, a.name),
          el("span", { class: "load", title: "open sessions / capacity" }, `${a.load}/${a.capacity}`),
          el("label", { class: "switch", title: a.status === "online" ? "go offline" : "go online" },
            el("input", {
              type: "checkbox",
              "data-agent": a.id,
              checked: a.status === "online",
              onchange: (ev) => act("Agent status", "agents", {
                agent_id: a.id, name: a.name, capacity: a.capacity, group_id: a.group_id,
                online: ev.target.checked,
              }),
            }),
            el("span", { class: "slider" }))))
    );
    const options = agents.map((a) => el("option", { value: a.id }, `${a.name} (${a.status})`));
    const keep = $("transfer-to").value;
    $("transfer-to").replaceChildren(...options);
    if (keep) $("transfer-to").value = keep;
  }

  function renderQueue(queue) {
    if (!changed("queue", queue)) return;
    $("queue").replaceChildren(
      ...(queue.length ? queue.map((q) => el("li", {}, el("b", {}, `#${q.position}`), ` ${q.name}`, el("small", {}, ` since ${q.since.slice(11)}`)))
        : [el("li", { class: "muted" }, "nobody waiting")])
    );
  }

  function badge(c) {
    const text = { agent: c.agent_name || "agent", queued: `queued #${c.position}`, robot: "robot", urobot: "urobot", closed: "closed", new: "new" }[c.status] || c.status;
    return el("span", { class: `badge ${c.status}` }, text);
  }

  function renderConversations(conversations) {
    if (!changed("conversations", [selected, conversations])) return;
    $("conversations").replaceChildren(
      ...conversations.map((c) =>
        el("li", {
          class: c.token === selected ? "on" : "",
          "data-token": c.token,
          onclick: () => select(c.token),
        },
          el("div", { class: "line" }, el("b", {}, c.name), badge(c)),
          el("div", { class: "line small" },
            el("span", { class: "rule", title: "routing rule" }, c.rule_name ? `rule: ${c.rule_name}` : ""),
            c.preview ? el("span", { class: "typing" }, `preview: ${c.preview}`) : "")))
    );
  }

  function messageBody(item) {
    const body = el("div", { class: "body" });
    const url = item.content;
    if (item.type === "image") {
      body.appendChild(el("a", { href: url, target: "_blank" }, el("img", { src: url, alt: item.filename || "image", class: "image" })));
    } else if (item.type === "video") {
      body.appendChild(el("video", { src: url, controls: true, class: "image" }));
    } else if (item.type === "audio" || item.type === "voice") {
      body.appendChild(el("audio", { src: url, controls: true }));
    } else if (item.type === "file") {
      body.appendChild(el("a", { href: url, target: "_blank", class: "file" }, `📄 ${item.filename || "file"}`));
    } else if (item.type === "rich") {
      body.appendChild(sanitized(item.content));
    } else {
      body.appendChild(document.createTextNode(item.content));
    }
    if (item.suggestions && item.suggestions.length) {
      body.appendChild(el("ul", { class: "suggestions" }, item.suggestions.filter(Boolean).map((s) => el("li", {}, s))));
    }
    return body;
  }

  function eventText(item) {
    if (item.type === "survey") return `★ Customer rated the session: ${item.content}`;
    const extra = item.type === "close" && item.survey ? " · survey offered" : "";
    return `${item.content || item.type}${item.agent_name ? ` (${item.agent_name})` : ""}${extra}`;
  }

  function renderTimeline(state) {
    if (!changed("timeline", [state.token, state.timeline])) return;
    const box = $("timeline");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    box.replaceChildren(
      ...state.timeline.map((item) => {
        if (item.from === "event") {
          return el("div", { class: "event" }, `${clock(item.time)} · ${eventText(item)}`);
        }
        const who = item.from === "customer" ? state.name : item.from === "agent" ? item.agent_name || "agent" : item.from;
        const failed = item.delivered === false ? el("span", { class: "failed", title: String(item.error) }, " ⚠ push failed") : "";
        const via = item.from === "customer" && item.via !== "agent" ? ` · via ${item.via}` : "";
        return el("div", { class: `item ${item.from}`, "data-type": item.type },
          el("div", { class: "who" }, `${who} · ${clock(item.time)}${via}`, failed),
          messageBody(item));
      })
    );
    if (!state.timeline.length) box.appendChild(el("div", { class: "event" }, "no messages yet"));
    if (atBottom || box.dataset.token !== state.token) {
      box.scrollTop = box.scrollHeight;
      // Pictures arrive after the layout: stay at the bottom as each one grows the list.
      box.querySelectorAll("img").forEach((img) =>
        img.addEventListener("load", () => (box.scrollTop = box.scrollHeight), { once: true }));
    }
    box.dataset.token = state.token;
  }

  function renderSelected(state, conversation) {
    $("nothing").hidden = !!state;
    $("conversation").hidden = !state;
    if (!state) return;
    $("customer-name").textContent = state.name;
    const open = state.sessions.find((s) => s.id === state.open_session_id);
    const facts = [
      `customer_token ${state.token}`,
      open ? `session ${open.id} with ${open.agent_name}` : conversation ? `status: ${conversation.status}` : "",
      `rule: ${state.rule_name || "—"}`,
      ...state.surveys.map((s) => `rated ${s.label} (session ${s.session_id})`),
    ].filter(Boolean);
    $("facts").replaceChildren(...facts.map((f) => el("span", {}, f)));
    $("close").disabled = !open;
    $("transfer").disabled = !open;
    renderTimeline(state);
    const preview = $("preview");
    const lastPreview = state.last_preview;
    preview.hidden = !state.preview && !lastPreview;
    preview.classList.toggle("live", !!state.preview);
    preview.textContent = state.preview
      ? `Message preview (on its way): ${state.preview}`
      : lastPreview ? `Last message preview, ${clock(lastPreview.time)}: ${lastPreview.content}` : "";
    if (!modeTouched && conversation && ["robot", "urobot"].includes(conversation.status)) {
      setMode(conversation.status);
    }
  }

  function render(state) {
    last = state;
    renderAgents(state.agents);
    renderQueue(state.queue);
    if (!selected && state.conversations.length) {
      select(state.conversations[0].token);
      return;
    }
    renderConversations(state.conversations);
    const conversation = state.conversations.find((c) => c.token === selected);
    renderSelected(state.selected, conversation);
    $("survey-style").value = state.survey_show_type;
    $("auto-assign").checked = state.auto_assign;
  }

  // --- actions --------------------------------------------------------------------------------

  function select(token) {
    selected = token;
    modeTouched = false;
    setMode("agent");
    history.replaceState(null, "", `#${encodeURIComponent(token)}`);
    refresh();
  }

  function mode() {
    return document.querySelector("input[name=mode]:checked").value;
  }

  function setMode(value) {
    document.querySelector(`input[name=mode][value=${value}]`).checked = true;
    syncComposer();
  }

  function syncComposer() {
    const m = mode();
    const type = $("reply-type").value;
    document.body.dataset.mode = m;
    document.body.dataset.replyType = m === "agent" ? type : "";
    $("reply").placeholder = {
      message: "Type a reply… (Enter sends, Shift+Enter new line)",
      rich: "HTML, e.g. <b>bold</b> <i>italic</i> <a href=\"https://udesk.cn\">link</a>",
      image: "https://… an image URL",
      upload: "optional: nothing to type, pick a file",
    }[m === "agent" ? type : "message"];
    if (m === "robot") $("reply").placeholder = "The robot's answer (question buttons are added)";
    if (m === "urobot") $("reply").placeholder = "The urobot's answer (HTML allowed)";
  }

  async function uploadFile() {
    const file = $("upload").files[0];
    if (!file) throw new Error("pick a file first");
    const form = new FormData();
    form.append("file", file, file.name);
    const response = await fetch("/sandbox/console/upload", { method: "POST", body: form });
    if (!response.ok) throw new Error(await response.text());
    return response.json();
  }

  function lastQuestion() {
    const items = (last && last.selected && last.selected.timeline) || [];
    const asked = items.filter((i) => i.from === "customer" && i.type === "message");
    return asked.length ? asked[asked.length - 1].content : "";
  }

  async function send() {
    const text = $("reply").value;
    const token = selected;
    if (!token) return;
    const m = mode();
    let done = null;
    if (m === "robot") {
      if (!text.trim()) return;
      done = await act("Robot reply", "robot_reply", { customer_token: token, answer: text, question: lastQuestion() });
    } else if (m === "urobot") {
      if (!text.trim()) return;
      const suggest = $("suggest").value.split(",").map((s) => s.trim()).filter(Boolean);
      done = await act("Urobot reply", "urobot_reply", {
        customer_token: token,
        ans_content: text,
        ans_type: suggest.length ? 2 : 1,
        hit_question: lastQuestion(),
        suggest,
        flow_id: $("flow").checked ? 80 : null,
      });
    } else {
      let type = $("reply-type").value;
      let content = text;
      let data = {};
      if (type === "upload") {
        try {
          const uploaded = await uploadFile();
          type = /^image\//.test(uploaded.content_type) ? "image" : "file";
          content = uploaded.url;
          data = { filename: uploaded.filename };
        } catch (err) {
          toast(`Upload failed: ${err.message}`);
          return;
        }
      }
      if (!content.trim()) return;
      done = await act("Reply", "agent_reply", { customer_token: token, content, type, data });
    }
    if (done) {
      $("reply").value = "";
      $("upload").value = "";
    }
  }

  // --- polling ------------------------------------------------------------------------------

  async function refresh() {
    try {
      const query = selected ? `?token=${encodeURIComponent(selected)}` : "";
      const response = await fetch(`/sandbox/console/state${query}`);
      if (!response.ok) throw new Error(response.statusText);
      render(await response.json());
      $("conn").textContent = "live";
      $("conn").className = "conn live";
    } catch (err) {
      $("conn").textContent = "offline";
      $("conn").className = "conn";
    }
  }

  async function loop() {
    for (;;) {
      await refresh();
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  // --- wiring ---------------------------------------------------------------------------------

  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    send();
  });
  $("reply").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) {
      ev.preventDefault();
      send();
    }
  });
  document.querySelectorAll("input[name=mode]").forEach((r) =>
    r.addEventListener("change", () => {
      modeTouched = true;
      syncComposer();
    }));
  $("reply-type").addEventListener("change", syncComposer);
  $("transfer").addEventListener("click", () =>
    act("Transfer", "transfer", { customer_token: selected, to_agent_id: parseInt($("transfer-to").value, 10) }));
  $("close").addEventListener("click", () =>
    act("Close", "close", { customer_token: selected, survey: $("with-survey").checked }));
  $("advance").addEventListener("click", () => act("Advance queue", "advance_queue"));
  $("survey-style").addEventListener("change", (ev) => act("Survey style", "config", { survey_show_type: ev.target.value }));
  $("auto-assign").addEventListener("change", (ev) => act("Auto-assign", "config", { auto_assign: ev.target.checked }));

  syncComposer();
  loop();
})();
